"""Model registry: models, versions, metrics, tags, aliases, promotions, history.

Revision ID: 0002_registry
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_registry"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), sa.ForeignKey("registered_models.name"), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("framework", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_size", sa.BigInteger, nullable=False),
        sa.Column("artifact_filename", sa.String(255), nullable=False),
        sa.Column("artifact_stored", sa.Boolean, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_index("ix_model_versions_name_stage", "model_versions", ["name", "stage"])
    op.create_index("ix_model_versions_framework", "model_versions", ["framework"])
    op.create_table(
        "model_version_metrics",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("metric", sa.String(128), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_model_version_metrics_metric_value", "model_version_metrics", ["metric", "value"]
    )
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("tag", sa.String(256), primary_key=True),
    )
    op.create_index("ix_model_version_tags_tag", "model_version_tags", ["tag"])
    op.create_table(
        "model_aliases",
        sa.Column(
            "name", sa.String(128), sa.ForeignKey("registered_models.name"), primary_key=True
        ),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("target_stage", sa.String(16), nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("reviewers", sa.Text, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(320), nullable=False),
        sa.Column("decision_comment", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("decided_us", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_promotion_requests_version_status", "promotion_requests", ["name", "version", "status"]
    )
    op.create_index("ix_promotion_requests_status", "promotion_requests", ["status"])
    op.create_table(
        "promotion_votes",
        sa.Column(
            "request_id",
            sa.String(32),
            sa.ForeignKey("promotion_requests.request_id"),
            primary_key=True,
        ),
        sa.Column("approver", sa.String(320), primary_key=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "model_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("from_value", sa.String(128), nullable=False),
        sa.Column("to_value", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("promotion_request_id", sa.String(32), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_model_history_name_version", "model_history", ["name", "version"])
    op.create_index("ix_model_history_alias", "model_history", ["name", "alias"])


def downgrade() -> None:
    for table in (
        "model_history",
        "promotion_votes",
        "promotion_requests",
        "model_aliases",
        "model_version_tags",
        "model_version_metrics",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(table)
