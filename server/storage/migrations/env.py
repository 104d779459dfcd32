"""Alembic environment: always driven programmatically by ``Database.migrate``.

The caller passes a live synchronous connection in ``config.attributes["connection"]``.
"""

from alembic import context

from neural.mlops.server.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
