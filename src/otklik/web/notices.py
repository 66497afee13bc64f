"""One-line confirmations shown after a redirect (`?notice=code`).

Only these codes are shown, so a crafted link cannot put arbitrary text on a page. The texts
are translated where they are rendered.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a text for the translation catalogue; it is translated when shown."""
    return message


NOTICES: dict[str, str] = {
    "signed_out": N_("You are signed out."),
    "saved": N_("Saved."),
    "key_revoked": N_("The key is revoked. Clients using it are refused within a minute."),
    "user_added": N_("The user is added."),
    "user_removed": N_("The user is removed from this workspace."),
    "role_changed": N_("The role is changed."),
    "password_changed": N_("Your password is changed. Other browsers are signed out."),
    "merged": N_("The customers are merged."),
    "merge_undone": N_("The merge is undone."),
    "traits_saved": N_("The customer's traits are saved."),
    "import_started": N_("The import has started."),
    "workspace_switched": N_("Workspace switched."),
    "consent_saved": N_("The consent is recorded."),
    "suppression_added": N_("The address is on the suppression list: nothing will be sent to it."),
    "suppression_exists": N_("The address was already on the suppression list."),
    "suppression_removed": N_("The address is off the suppression list."),
    "template_created": N_("The template is created."),
    "template_saved": N_("Saved as a new version."),
    "template_unchanged": N_("Nothing changed, so no new version was saved."),
    "template_restored": N_("The old version is restored as a new version."),
    "channel_added": N_("The provider is added."),
    "channel_deleted": N_("The provider is deleted."),
}

ROLE_LABELS: dict[str, str] = {
    "admin": N_("Admin"),
    "marketer": N_("Marketer"),
    "operator": N_("Operator"),
    "viewer": N_("Viewer"),
}
