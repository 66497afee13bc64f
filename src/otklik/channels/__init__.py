"""Channel adapters: one contract, one module per provider, an explicit registry."""
