"""Audit: a hash version per event.

``hash_version`` says how an event's ``hash`` was computed (server/audit/hashchain.py):
1 for every event already stored (Python's json.dumps serialization), 2 for events
written from now on (RFC 8785, the JSON Canonicalization Scheme, with the version inside
the hashed object). Existing chains keep verifying unchanged.

Revision ID: 0012_audit_hash_version
Revises: 0005_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_audit_hash_version"
down_revision = "0005_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default adds the NOT NULL column in place on SQLite and PostgreSQL, and
    # is the version of every row written before.
    op.add_column(
        "audit_events",
        sa.Column("hash_version", sa.SmallInteger, nullable=False, server_default="1"),
    )


def downgrade() -> None:
    # Version 2 events cannot be verified by code that knows only version 1: refuse
    # rather than leave a chain that looks edited.
    bind = op.get_bind()
    newer = bind.execute(sa.text("SELECT count(*) FROM audit_events WHERE hash_version <> 1"))
    if newer.scalar():
        raise RuntimeError("audit events hashed with version 2 exist; cannot downgrade")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash_version")
