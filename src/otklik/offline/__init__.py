"""Offline data in and out: customer and order imports (shop, POS, ERP), bulk exports."""
