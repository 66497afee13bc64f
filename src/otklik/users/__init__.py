"""Console users: accounts, roles per workspace, passwords and browser sessions."""
