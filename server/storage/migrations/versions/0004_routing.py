"""Routing: the persisted routing-table version and the metric-batch dedup table.

Revision ID: 0004_routing
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_routing"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "metric_batches",
        sa.Column("sidecar_id", sa.String(200), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("windows", sa.Integer, nullable=False),
    )
    op.create_index("ix_metric_batches_received", "metric_batches", ["received_us"])


def downgrade() -> None:
    op.drop_index("ix_metric_batches_received", "metric_batches")
    op.drop_table("metric_batches")
    op.drop_table("routing_state")
