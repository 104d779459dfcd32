"""Store administration: copy a store between engines, back it up online, restore it
(``neural-mlops admin``; docs/operations.md)."""

from neural.mlops.server.admin.backup import backup
from neural.mlops.server.admin.location import StoreLocation
from neural.mlops.server.admin.migrate import CopyResult, migrate_store
from neural.mlops.server.admin.restore import restore

__all__ = ["CopyResult", "StoreLocation", "backup", "migrate_store", "restore"]
