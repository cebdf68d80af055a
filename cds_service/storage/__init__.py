"""Storage for the issued-card ledger, feedback and the JWT replay store (``jti``).

Infrastructure, used by ``cdshooks``, on SQLAlchemy Core (its one home, with the psycopg
driver): embedded SQLite by default, PostgreSQL when several replicas share one database.
"""

from .base import FeedbackRecord, FeedbackResult, IssuedCard, RuleReport, StorageError, Store
from .ledger import LedgerWriter
from .sql import SqlStore, database_url, open_store

__all__ = [
    "FeedbackRecord",
    "FeedbackResult",
    "IssuedCard",
    "LedgerWriter",
    "RuleReport",
    "Store",
    "StorageError",
    "SqlStore",
    "database_url",
    "open_store",
]
