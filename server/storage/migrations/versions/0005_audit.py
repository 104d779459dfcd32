"""Audit: signed chain checkpoints, saved compliance reports, query indexes ending in
(ts_us, seq) so newest-first pages are read straight from an index.

Revision ID: 0005_audit
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_audit"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

_OLD_INDEXES = {
    "ix_audit_events_ts": ["ts_us"],
    "ix_audit_events_type_ts": ["event_type", "ts_us"],
    "ix_audit_events_actor_ts": ["actor", "ts_us"],
    "ix_audit_events_resource": ["resource_type", "resource_id"],
}
_NEW_INDEXES = {
    "ix_audit_events_ts_seq": ["ts_us", "seq"],
    "ix_audit_events_type_ts_seq": ["event_type", "ts_us", "seq"],
    "ix_audit_events_actor_ts_seq": ["actor", "ts_us", "seq"],
    "ix_audit_events_resource_ts_seq": ["resource_type", "resource_id", "ts_us", "seq"],
}


def upgrade() -> None:
    for name in _OLD_INDEXES:
        op.drop_index(name, table_name="audit_events")
    for name, cols in _NEW_INDEXES.items():
        op.create_index(name, "audit_events", cols)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_seq", "audit_checkpoints", ["seq"])
    op.create_table(
        "audit_reports",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_reports_created", "audit_reports", ["created_us"])


def downgrade() -> None:
    op.drop_table("audit_reports")
    op.drop_table("audit_checkpoints")
    for name in _NEW_INDEXES:
        op.drop_index(name, table_name="audit_events")
    for name, cols in _OLD_INDEXES.items():
        op.create_index(name, "audit_events", cols)
