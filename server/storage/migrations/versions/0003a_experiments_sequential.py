"""Experiments: keep the running minimum of the always-valid (mSPRT) p-value per variant.

Revision ID: 0003a_experiments_seq
Revises: 0003_experiments
"""

import sqlalchemy as sa
from alembic import op

revision = "0003a_experiments_seq"
down_revision = "0003_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("sequential_state", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("sequential_state")
