"""Registry lineage: where each model version came from.

Five columns on ``model_versions`` (source run id and URI, git commit, parent version,
the input/output signature as canonical JSON), each "" for versions registered before
(lineage not recorded), and ``model_version_data``, the training data references of a
version in the order given. Indexed for the search filter's ``run_id``,
``code_revision``, ``parent`` and ``data`` clauses.

Revision ID: 0011_registry_lineage
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_registry_lineage"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

COLUMNS = (
    ("source_run_id", sa.String(256)),
    ("source_uri", sa.String(2048)),
    ("code_revision", sa.String(40)),
    ("parent_version", sa.String(128)),
    ("signature", sa.Text),
)


def upgrade() -> None:
    # A constant default lets both SQLite and PostgreSQL add NOT NULL columns in place,
    # without copying the table (other tables' foreign keys point at it).
    for name, type_ in COLUMNS:
        op.add_column("model_versions",
                      sa.Column(name, type_, nullable=False, server_default=""))
    op.create_index("ix_model_versions_source_run_id", "model_versions", ["source_run_id"])
    op.create_index("ix_model_versions_code_revision", "model_versions", ["code_revision"])
    op.create_index("ix_model_versions_parent", "model_versions", ["name", "parent_version"])
    op.create_table(
        "model_version_data",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("digest", sa.String(256), nullable=False),
    )
    op.create_index("ix_model_version_data_uri", "model_version_data", ["uri"])
    op.create_index("ix_model_version_data_digest", "model_version_data", ["digest"])


def downgrade() -> None:
    op.drop_table("model_version_data")
    for index in ("ix_model_versions_parent", "ix_model_versions_code_revision",
                  "ix_model_versions_source_run_id"):
        op.drop_index(index, table_name="model_versions")
    # SQLite drops columns only by copying the table: batch mode does that.
    with op.batch_alter_table("model_versions") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
