"""Web console sessions in the database: shared by replicas, kept across restarts.

``console_sessions`` holds one row per console login, keyed by the SHA-256 of the
session id the browser's cookie carries. The credential the session forwards on its
gRPC calls (the API token, the OIDC ID token, or the declared name) is stored
AES-GCM-encrypted under a key derived (HKDF) from the session id itself, so the row alone
yields no usable credential (server/console/sessions.py, docs/security.md).
``console_oidc_logins`` holds the OIDC logins between their start and the issuer's
callback (the SHA-256 of their state), so the callback may reach any replica.

Revision ID: 0015_console_sessions
Revises: 0014_bandit_weights
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_console_sessions"
down_revision = "0014_bandit_weights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("credential", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_console_sessions_subject_seen", "console_sessions",
                    ["subject", "seen_us"])
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_us"])
    op.create_index("ix_console_sessions_seen", "console_sessions", ["seen_us"])
    op.create_table(
        "console_oidc_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_console_oidc_logins_created", "console_oidc_logins", ["created_us"])


def downgrade() -> None:
    op.drop_index("ix_console_oidc_logins_created", table_name="console_oidc_logins")
    op.drop_table("console_oidc_logins")
    op.drop_index("ix_console_sessions_seen", table_name="console_sessions")
    op.drop_index("ix_console_sessions_expires", table_name="console_sessions")
    op.drop_index("ix_console_sessions_subject_seen", table_name="console_sessions")
    op.drop_table("console_sessions")
