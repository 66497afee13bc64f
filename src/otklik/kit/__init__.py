"""Domain-free plumbing shared by every domain: db, time, ids, errors, pagination."""
