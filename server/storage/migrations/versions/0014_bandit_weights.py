"""Multi-armed bandit tests (issue #16): the weight history, and room for the strategy name.

``experiment_bandit_weights`` keeps every reweighting of a bandit test (numbered per test
from 1): the weights set and the per-arm P(best), observations, posterior means and
expected gaps they came from. ``experiments.strategy`` widens from 16 to 32 characters
for ``multi_armed_bandit`` (SQLite does not enforce the length, so only PostgreSQL alters).

Revision ID: 0014_bandit_weights
Revises: 0010_experiment_units
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_bandit_weights"
down_revision = "0010_experiment_units"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_bandit_weights",
        sa.Column("test_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("experiments", "strategy", type_=sa.String(32),
                        existing_type=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("experiments", "strategy", type_=sa.String(16),
                        existing_type=sa.String(32), existing_nullable=False)
    op.drop_table("experiment_bandit_weights")
