"""ingest spool progress

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import otklik.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_spool_progress",
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.BigInteger(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", otklik.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_ingest_spool_progress")),
    )


def downgrade() -> None:
    op.drop_table("ingest_spool_progress")
