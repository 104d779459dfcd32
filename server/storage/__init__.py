"""Storage: SQLAlchemy Core tables, Alembic migrations and the transaction boundary."""

from neural.mlops.server.storage.database import Change, Database, sqlite_url

__all__ = ["Change", "Database", "sqlite_url"]
