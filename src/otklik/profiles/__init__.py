"""Profiles: one per person, identity resolution, merges, GDPR."""
