"""Storage for the issued-card ledger, feedback and the JWT replay store (``jti``).

Infrastructure, used by ``cdshooks``: standard library only for the embedded SQLite default.
"""

from .base import FeedbackRecord, FeedbackResult, IssuedCard, RuleReport, StorageError, Store
from .sqlite import SqliteStore, open_store

__all__ = [
    "FeedbackRecord",
    "FeedbackResult",
    "IssuedCard",
    "RuleReport",
    "Store",
    "StorageError",
    "SqliteStore",
    "open_store",
]
