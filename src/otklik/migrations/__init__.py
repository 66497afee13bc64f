"""Alembic migrations, shipped inside the package so `otklik migrate` works from any install."""
