"""Deployments (canary, blue-green, direct, shadow), their decision log and shadow deployments.

Revision ID: 0006_deployments
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_deployments"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("stable_version", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("active_model", sa.String(128), nullable=True, unique=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("completed_us", sa.BigInteger, nullable=True),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("traffic_percentage", sa.Float, nullable=False),
        sa.Column("step_started_us", sa.BigInteger, nullable=False),
        sa.Column("next_check_us", sa.BigInteger, nullable=False),
        sa.Column("failed_checks", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("last_check", sa.Text, nullable=False),
    )
    op.create_index("ix_deployments_model_created", "deployments", ["model_name", "created_us"])
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("traffic_percentage", sa.Float, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_deployment_events_deployment", "deployment_events", ["deployment_id", "id"]
    )
    op.create_table(
        "shadow_deployments",
        sa.Column("shadow_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("primary_model", sa.String(260), nullable=False),
        sa.Column("shadow_model", sa.String(260), nullable=False),
        sa.Column("percentage", sa.Float, nullable=False),
        sa.Column("upstream", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("stopped_us", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_shadow_deployments_model_status", "shadow_deployments", ["model_name", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_shadow_deployments_model_status", "shadow_deployments")
    op.drop_table("shadow_deployments")
    op.drop_index("ix_deployment_events_deployment", "deployment_events")
    op.drop_table("deployment_events")
    op.drop_index("ix_deployments_status", "deployments")
    op.drop_index("ix_deployments_model_created", "deployments")
    op.drop_table("deployments")
