"""Figures about a workspace: the console's dashboard now, campaign reports later."""
