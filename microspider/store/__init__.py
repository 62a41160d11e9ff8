"""Failure and item stores: one interface, a MongoDB backend and an embedded SQLite one.

A failure document, one per seed fingerprint::

    {"_id": fingerprint, "seed": {...}, "url": ..., "status": 503, "headers": {...},
     "body": b"...", "encoding": "utf-8", "error": "ValueError", "message": "...",
     "traceback": "...", "attempts": 3, "first_failed": 1700000000.0, "last_failed": ...}

Items are dicts; an item with ``_id`` replaces the stored one (upsert).
Collections: ``<spider>_failures`` and ``<spider>_items``.
"""
from ..errors import ConnectionFailed
from .base import FAILURE_FIELDS, Store, failure_doc
from .mongo import MongoStore
from .sqlite import SQLiteStore

__all__ = ["Store", "MongoStore", "SQLiteStore", "open_store", "failure_doc", "FAILURE_FIELDS"]


def open_store(uri, db, spider):
    """The store for a resolved URI: mongodb://, mongomock:// or sqlite:///path."""
    if uri.startswith("sqlite:///"):
        return SQLiteStore(uri[len("sqlite:///"):], spider)
    if uri.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        return MongoStore(uri, db, spider)
    raise ConnectionFailed("unsupported store URI %r: use mongodb://, mongomock:// or sqlite:///"
                           % uri)
