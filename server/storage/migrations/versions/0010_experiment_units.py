"""Experiments analysed by unit: per-unit counts, per-variant unit totals, covariates.

``experiment_units`` holds one row per (test, variant, unit key) with the unit's running
counts (server/experiments/unitstore.py upserts it additively); ``experiment_unit_totals``
the per-variant sums over units (including sums of squares and cross products, kept by
differences); ``experiment_covariates`` the pre-experiment covariate per unit (CUPED).
Unit keys are the signed 64-bit keys of neural.mlops.v1.units.unit_key.

Revision ID: 0010_experiment_units
Revises: 0003a_experiments_seq
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_experiment_units"
down_revision = "0003a_experiments_seq"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_units",
        sa.Column("test_id", sa.String(128), primary_key=True),
        sa.Column("variant", sa.String(128), primary_key=True),
        sa.Column("unit_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("successes", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("latency_n", sa.BigInteger, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
        sa.Column("custom", sa.Text, nullable=False),
        sa.Column("covariate", sa.Float, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "experiment_unit_totals",
        sa.Column("test_id", sa.String(128), primary_key=True),
        sa.Column("variant", sa.String(128), primary_key=True),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiment_covariates",
        sa.Column("test_id", sa.String(128), primary_key=True),
        sa.Column("unit_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("experiment_covariates")
    op.drop_table("experiment_unit_totals")
    op.drop_table("experiment_units")
