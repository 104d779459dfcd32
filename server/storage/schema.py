"""Table definitions (SQLAlchemy Core). Migrations under ``migrations/`` create them.

Portable between SQLite and PostgreSQL: times are integer microseconds since the epoch
(``*_us``), JSON is stored as canonical text, ids are strings.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

NAME = sa.String(128)
ACTOR = sa.String(320)

# --- audit (foundation: every audited change appends here in its own transaction) ---

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(32), nullable=False, unique=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("actor", ACTOR, nullable=False),
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(300), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("peer", sa.String(128), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_events_ts", "ts_us"),
    sa.Index("ix_audit_events_type_ts", "event_type", "ts_us"),
    sa.Index("ix_audit_events_actor_ts", "actor", "ts_us"),
    sa.Index("ix_audit_events_resource", "resource_type", "resource_id"),
)

audit_chain_head = sa.Table(
    "audit_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# --- registry ---

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", NAME, primary_key=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", NAME, sa.ForeignKey("registered_models.name"), nullable=False),
    sa.Column("version", NAME, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("framework", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_by", ACTOR, nullable=False),
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
    sa.Index("ix_model_versions_name_stage", "name", "stage"),
    sa.Index("ix_model_versions_framework", "framework"),
)

model_version_metrics = sa.Table(
    "model_version_metrics",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("metric", sa.String(128), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("ix_model_version_metrics_metric_value", "metric", "value"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("tag", sa.String(256), primary_key=True),
    sa.Index("ix_model_version_tags_tag", "tag"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", NAME, sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("alias", NAME, primary_key=True),
    sa.Column("version", NAME, nullable=False),
)

promotion_requests = sa.Table(
    "promotion_requests",
    metadata,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("version", NAME, nullable=False),
    sa.Column("target_stage", sa.String(16), nullable=False),
    sa.Column("from_stage", sa.String(16), nullable=False),
    sa.Column("requested_by", ACTOR, nullable=False),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("reviewers", sa.Text, nullable=False),
    sa.Column("required_approvals", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decided_by", ACTOR, nullable=False),
    sa.Column("decision_comment", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("decided_us", sa.BigInteger, nullable=True),
    sa.Index("ix_promotion_requests_version_status", "name", "version", "status"),
    sa.Index("ix_promotion_requests_status", "status"),
)

promotion_votes = sa.Table(
    "promotion_votes",
    metadata,
    sa.Column(
        "request_id",
        sa.String(32),
        sa.ForeignKey("promotion_requests.request_id"),
        primary_key=True,
    ),
    sa.Column("approver", ACTOR, primary_key=True),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
)

model_history = sa.Table(
    "model_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("version", NAME, nullable=False),
    sa.Column("alias", NAME, nullable=False),
    sa.Column("from_value", NAME, nullable=False),
    sa.Column("to_value", NAME, nullable=False),
    sa.Column("actor", ACTOR, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("promotion_request_id", sa.String(32), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Index("ix_model_history_name_version", "name", "version"),
    sa.Index("ix_model_history_alias", "name", "alias"),
)
