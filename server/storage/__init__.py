"""Storage: SQLAlchemy Core tables, Alembic migrations and the transaction boundary."""

from neural.mlops.server.storage.database import Change, Database, is_outage, sqlite_url
from neural.mlops.server.storage.watch import StoreWatch

__all__ = ["Change", "Database", "StoreWatch", "is_outage", "sqlite_url"]
