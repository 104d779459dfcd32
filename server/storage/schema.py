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
    # How ``hash`` was computed (audit/hashchain.py): 1 before 0012, 2 (RFC 8785) since.
    sa.Column("hash_version", sa.SmallInteger, nullable=False, server_default="1"),
    # Queries return newest first, ordered by (ts_us, seq): each index ends with those two
    # columns so a filtered, paginated query reads only the page it returns (0005_audit).
    sa.Index("ix_audit_events_ts_seq", "ts_us", "seq"),
    sa.Index("ix_audit_events_type_ts_seq", "event_type", "ts_us", "seq"),
    sa.Index("ix_audit_events_actor_ts_seq", "actor", "ts_us", "seq"),
    sa.Index("ix_audit_events_resource_ts_seq", "resource_type", "resource_id", "ts_us", "seq"),
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
    # Lineage (0011_registry_lineage; server/registry/lineage.py): "" = not recorded.
    sa.Column("source_run_id", sa.String(256), nullable=False, server_default=""),
    sa.Column("source_uri", sa.String(2048), nullable=False, server_default=""),
    sa.Column("code_revision", sa.String(40), nullable=False, server_default=""),
    sa.Column("parent_version", NAME, nullable=False, server_default=""),
    sa.Column("signature", sa.Text, nullable=False, server_default=""),  # canonical JSON
    sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    sa.Index("ix_model_versions_name_stage", "name", "stage"),
    sa.Index("ix_model_versions_framework", "framework"),
    sa.Index("ix_model_versions_source_run_id", "source_run_id"),
    sa.Index("ix_model_versions_code_revision", "code_revision"),
    sa.Index("ix_model_versions_parent", "name", "parent_version"),
)

# The training data of a version's lineage, in the order given (0011_registry_lineage).
model_version_data = sa.Table(
    "model_version_data",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("uri", sa.String(2048), nullable=False),
    sa.Column("digest", sa.String(256), nullable=False),
    sa.Index("ix_model_version_data_uri", "uri"),
    sa.Index("ix_model_version_data_digest", "digest"),
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

# --- traffic statistics (issue #4; server/traffic): per-window sufficient statistics ---
# window_start_us = -1 is the running total of a route / shadow.

traffic_windows = sa.Table(
    "traffic_windows",
    metadata,
    sa.Column("route_id", sa.String(128), primary_key=True),
    sa.Column("variant", NAME, primary_key=True),
    sa.Column("window_start_us", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

shadow_windows = sa.Table(
    "shadow_windows",
    metadata,
    sa.Column("shadow_id", sa.String(128), primary_key=True),
    sa.Column("window_start_us", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# --- experiments (issue #4; server/experiments): A/B tests ---

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("test_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("strategy", sa.String(32), nullable=False),  # 32 since 0014 (multi_armed_bandit)
    sa.Column("model_name", NAME, nullable=False),  # the route's model (ModelInfer.model_name)
    sa.Column("variants", sa.Text, nullable=False),  # JSON list, declared order
    sa.Column("config", sa.Text, nullable=False),  # JSON: analysis / decision settings
    sa.Column("forced", sa.Text, nullable=False),  # JSON {unit_id: variant} QA overrides
    sa.Column("split_history", sa.Text, nullable=False),  # JSON list of weight changes
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("winner", NAME, nullable=False),
    sa.Column("conclusion", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.Column("started_us", sa.BigInteger, nullable=True),
    sa.Column("ended_us", sa.BigInteger, nullable=True),
    sa.Column(
        "running_us", sa.BigInteger, nullable=False
    ),  # time spent RUNNING before the last resume
    sa.Column("resumed_us", sa.BigInteger, nullable=True),  # when the current RUNNING spell began
    # JSON {variant: smallest mSPRT p-value seen at any analysis} (migration 0003a)
    sa.Column("sequential_state", sa.Text, nullable=True),
    sa.Index("ix_experiments_status", "status"),
    sa.Index("ix_experiments_name", "name"),
)

# 0010_experiment_units (server/experiments/unitstore.py): analysis by the randomized unit.
# One row per (test, variant, unit key) with the unit's running counts; per-variant sums
# over units (sums of squares kept by differences); pre-experiment covariates for CUPED.

experiment_units = sa.Table(
    "experiment_units",
    metadata,
    sa.Column("test_id", sa.String(128), primary_key=True),
    sa.Column("variant", NAME, primary_key=True),
    sa.Column("unit_key", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("latency_n", sa.BigInteger, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("custom", sa.Text, nullable=False),  # JSON {name: [n, sum]}, "" when none
    sa.Column("covariate", sa.Float, nullable=True),
    sqlite_with_rowid=False,
)

experiment_unit_totals = sa.Table(
    "experiment_unit_totals",
    metadata,
    sa.Column("test_id", sa.String(128), primary_key=True),
    sa.Column("variant", NAME, primary_key=True),
    sa.Column("stats", sa.Text, nullable=False),  # JSON of unitstats.UnitTotals
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

experiment_covariates = sa.Table(
    "experiment_covariates",
    metadata,
    sa.Column("test_id", sa.String(128), primary_key=True),
    sa.Column("unit_key", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)

# 0014_bandit_weights (server/experiments/bandit_store.py): every reweighting of a
# multi-armed bandit test, numbered per test from 1 (the analysis' weight history).

experiment_bandit_weights = sa.Table(
    "experiment_bandit_weights",
    metadata,
    sa.Column("test_id", sa.String(128), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("weights", sa.Text, nullable=False),  # JSON {arm: weight}
    # JSON {p_best, observations, means, expected_gap} per arm (bandit.Reweighting)
    sa.Column("details", sa.Text, nullable=False),
)


# --- audit (0005_audit): signed checkpoints of the chain head and saved compliance reports ---

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    # periodic | export | purge | shutdown | manual; a purge checkpoint anchors the chain
    # that remains after the events up to ``seq`` were deleted.
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Index("ix_audit_checkpoints_seq", "seq"),
)

audit_reports = sa.Table(
    "audit_reports",
    metadata,
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the report as canonical JSON
    sa.Index("ix_audit_reports_created", "created_us"),
)


# --- routing (0004_routing): routing-table version and metric-batch dedup ---

routing_state = sa.Table(
    "routing_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the table's content
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

metric_batches = sa.Table(
    "metric_batches",
    metadata,
    sa.Column("sidecar_id", sa.String(200), primary_key=True),
    sa.Column("session", sa.String(64), primary_key=True),  # 0008_metric_sessions
    sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    sa.Column("windows", sa.Integer, nullable=False),
    sa.Index("ix_metric_batches_received", "received_us"),
)

# 0008_metric_sessions: with authentication on, the principal that owns a sidecar id.
sidecar_owners = sa.Table(
    "sidecar_owners",
    metadata,
    sa.Column("sidecar_id", sa.String(200), primary_key=True),
    sa.Column("principal", sa.String(320), nullable=False),
    sa.Column("first_seen_us", sa.BigInteger, nullable=False),
)


# --- deployments (0006_deployments; server/deployments): rollouts, their decisions, shadows ---

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("deployment_id", sa.String(64), primary_key=True),
    sa.Column("model_name", NAME, nullable=False),
    sa.Column("model_version", NAME, nullable=False),
    sa.Column("stable_version", NAME, nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # = model_name while the deployment is active, NULL afterwards: at most one active
    # deployment per model, enforced by the database (NULLs never collide).
    sa.Column("active_model", NAME, nullable=True, unique=True),
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.Column("completed_us", sa.BigInteger, nullable=True),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("traffic_percentage", sa.Float, nullable=False),
    sa.Column("step_started_us", sa.BigInteger, nullable=False),
    sa.Column("next_check_us", sa.BigInteger, nullable=False),
    sa.Column("failed_checks", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),  # compare-and-set guard of every decision
    sa.Column("config", sa.Text, nullable=False),  # JSON: baseline, rollback_config, plan, gate
    sa.Column("state", sa.Text, nullable=False),  # JSON: step snapshot, reported metrics, reasons
    sa.Column("last_check", sa.Text, nullable=False),  # JSON of the latest check ("" = none yet)
    sa.Index("ix_deployments_model_created", "model_name", "created_us"),
    sa.Index("ix_deployments_status", "status"),
)

deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(64), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", ACTOR, nullable=False),
    sa.Column("from_status", sa.String(16), nullable=False),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("traffic_percentage", sa.Float, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Index("ix_deployment_events_deployment", "deployment_id", "id"),
)

shadow_deployments = sa.Table(
    "shadow_deployments",
    metadata,
    sa.Column("shadow_id", sa.String(64), primary_key=True),
    sa.Column("model_name", NAME, nullable=False),
    sa.Column("primary_model", sa.String(260), nullable=False),
    sa.Column("shadow_model", sa.String(260), nullable=False),
    sa.Column("percentage", sa.Float, nullable=False),
    sa.Column("upstream", sa.String(300), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("stopped_us", sa.BigInteger, nullable=True),
    sa.Index("ix_shadow_deployments_model_status", "model_name", "status"),
)

# --- auth (0007_auth): API tokens and role grants ---

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("name", ACTOR, nullable=False),  # the principal the token authenticates as
    # sha256 hex of the 256-bit random secret; the secret itself is never stored.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON list of role names
    sa.Column("models", sa.Text, nullable=False),  # JSON list of model-name globs
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=True),
    sa.Column("revoked_us", sa.BigInteger, nullable=True),
    sa.Column("revoked_by", ACTOR, nullable=True),
    sa.Index("ix_api_tokens_name", "name"),
)

role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", ACTOR, nullable=False),  # a principal name, or "group:NAME"
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("models", sa.String(300), nullable=False),  # model-name glob; "*" = every model
    sa.Column("created_by", ACTOR, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("subject", "role", "models", name="uq_role_grants_subject_role_models"),
)

# --- console (0015_console_sessions, server/console/sessions.py): web console sessions,
# shared by every replica and kept across restarts. Never a usable secret: the key is the
# SHA-256 of the cookie's session id, the forwarded credential is AES-GCM-encrypted under a
# key derived from that id (which only the browser holds), the CSRF token is derived too.

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # sha256 hex of the session id
    sa.Column("subject", ACTOR, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),  # none | token | oidc
    # The API token a token login forwards (its public id, not its secret): revoking the
    # token ends the session. "" for other logins.
    sa.Column("token_id", sa.String(32), nullable=False),
    sa.Column("credential", sa.Text, nullable=False),  # base64url(nonce || AES-GCM output)
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),  # absolute end
    sa.Column("seen_us", sa.BigInteger, nullable=False),  # last use (idle end), coarse
    sa.Index("ix_console_sessions_subject_seen", "subject", "seen_us"),
    sa.Index("ix_console_sessions_expires", "expires_us"),
    sa.Index("ix_console_sessions_seen", "seen_us"),
)

# A console OIDC login between its start and the issuer's callback (oidc_pending.py): the
# state's SHA-256 (one use), where the callback goes, when it started. The nonce and PKCE
# verifier are derived from the browser's state cookie, never stored.
console_oidc_logins = sa.Table(
    "console_oidc_logins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Index("ix_console_oidc_logins_created", "created_us"),
)
