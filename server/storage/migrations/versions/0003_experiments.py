"""Experiments (A/B tests) and the windowed traffic statistics they read.

Revision ID: 0003_experiments
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_experiments"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_windows",
        sa.Column("route_id", sa.String(128), primary_key=True),
        sa.Column("variant", sa.String(128), primary_key=True),
        sa.Column("window_start_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "shadow_windows",
        sa.Column("shadow_id", sa.String(128), primary_key=True),
        sa.Column("window_start_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("test_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("variants", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("forced", sa.Text, nullable=False),
        sa.Column("split_history", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("winner", sa.String(128), nullable=False),
        sa.Column("conclusion", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=True),
        sa.Column("ended_us", sa.BigInteger, nullable=True),
        sa.Column("running_us", sa.BigInteger, nullable=False),
        sa.Column("resumed_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_index("ix_experiments_name", "experiments", ["name"])


def downgrade() -> None:
    op.drop_index("ix_experiments_name", "experiments")
    op.drop_index("ix_experiments_status", "experiments")
    for table in ("experiments", "shadow_windows", "traffic_windows"):
        op.drop_table(table)
