"""Metric batches: dedup per sidecar session, and sidecar ids bound to a principal.

A sidecar's id is public (its /healthz shows it), so ``(sidecar_id, sequence)`` alone let
anyone pre-empt its next sequence numbers with empty batches and have its real batches
dropped as duplicates. Each sidecar process now sends a random ``session`` that it never
publishes; dedup is on ``(sidecar_id, session, sequence)``. With authentication on, the
first principal that reports under an id owns it (``sidecar_owners``).

Revision ID: 0008_metric_sessions
Revises: 0004_routing
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_metric_sessions"
down_revision = "0004_routing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_batches_v2",
        sa.Column("sidecar_id", sa.String(200), primary_key=True),
        sa.Column("session", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("windows", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO metric_batches_v2 (sidecar_id, session, sequence, received_us, windows) "
        "SELECT sidecar_id, '', sequence, received_us, windows FROM metric_batches"
    )
    op.drop_index("ix_metric_batches_received", "metric_batches")
    op.drop_table("metric_batches")
    op.rename_table("metric_batches_v2", "metric_batches")
    op.create_index("ix_metric_batches_received", "metric_batches", ["received_us"])
    op.create_table(
        "sidecar_owners",
        sa.Column("sidecar_id", sa.String(200), primary_key=True),
        sa.Column("principal", sa.String(320), nullable=False),
        sa.Column("first_seen_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sidecar_owners")
    op.drop_index("ix_metric_batches_received", "metric_batches")
    op.create_table(
        "metric_batches_v1",
        sa.Column("sidecar_id", sa.String(200), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("windows", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO metric_batches_v1 (sidecar_id, sequence, received_us, windows) "
        "SELECT sidecar_id, sequence, max(received_us), sum(windows) FROM metric_batches "
        "GROUP BY sidecar_id, sequence"
    )
    op.drop_table("metric_batches")
    op.rename_table("metric_batches_v1", "metric_batches")
    op.create_index("ix_metric_batches_received", "metric_batches", ["received_us"])
