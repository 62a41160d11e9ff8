"""The MongoDB backend (pymongo; mongomock for ``mongomock://`` URIs in tests)."""
import time

from ..errors import StoreError
from .base import FAILURE_FIELDS, Store

class MongoStore(Store):
    """pymongo (or mongomock for ``mongomock://`` URIs) collections."""

    def __init__(self, uri, db, spider):
        if uri.startswith("mongomock://"):
            import mongomock

            self.client = mongomock.MongoClient()
        else:
            import pymongo

            self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        database = self.client[db]
        self.failures = database[spider + "_failures"]
        self.items = database[spider + "_items"]
        self._errors = _store_errors()
        self._indexed = False

    def _index(self):
        if not self._indexed:  # iter_failures sorts by it; without an index a large sort fails
            self._guard(self.failures.create_index, "last_failed")
            self._indexed = True

    def _guard(self, call, *args):
        try:
            return call(*args)
        except self._errors as exc:
            raise StoreError("MongoDB store failed: %s" % str(exc).splitlines()[0]) from exc

    def save_failures(self, failures, now=None):
        from pymongo import UpdateOne

        now = time.time() if now is None else now
        ops = [UpdateOne({"_id": d["_id"]},
                         {"$set": dict({k: d[k] for k in FAILURE_FIELDS}, last_failed=now),
                          "$inc": {"attempts": 1},
                          "$setOnInsert": {"first_failed": now}}, upsert=True)
               for d in failures]
        if ops:
            self._guard(self.failures.bulk_write, ops, False)

    def remove_failures(self, fingerprints):
        if fingerprints:
            self._guard(self.failures.delete_many, {"_id": {"$in": list(fingerprints)}})

    def iter_failures(self, limit=None):
        self._index()
        cursor = self.failures.find().sort("last_failed", 1)
        if limit:
            cursor = cursor.limit(limit)
        for doc in cursor:
            if doc.get("body") is not None:
                doc["body"] = bytes(doc["body"])
            yield doc

    def get_failure(self, fingerprint):
        doc = self._guard(self.failures.find_one, {"_id": fingerprint})
        if doc is not None and doc.get("body") is not None:
            doc["body"] = bytes(doc["body"])
        return doc

    def count_failures(self):
        return self._guard(self.failures.count_documents, {})

    def failures_by_error(self):
        rows = self._guard(lambda: list(self.failures.aggregate(
            [{"$group": {"_id": "$error", "n": {"$sum": 1}}}])))
        return {r["_id"]: r["n"] for r in rows}

    def load_failures(self, docs):
        from pymongo import ReplaceOne

        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs]
        if ops:
            self._guard(self.failures.bulk_write, ops, False)

    def save_items(self, items):
        from pymongo import InsertOne, ReplaceOne

        ops = [ReplaceOne({"_id": i["_id"]}, i, upsert=True) if "_id" in i else InsertOne(dict(i))
               for i in items]
        if ops:
            self._guard(self.items.bulk_write, ops, False)

    def iter_items(self):
        for doc in self.items.find().sort("_id", 1):
            if not isinstance(doc["_id"], (str, int, float)):
                doc["_id"] = str(doc["_id"])
            yield doc

    def count_items(self):
        return self._guard(self.items.count_documents, {})

    def clear_failures(self):
        return self._guard(self.failures.delete_many, {}).deleted_count

    def clear_items(self):
        return self._guard(self.items.delete_many, {}).deleted_count

    def close(self):
        self.client.close()


def _store_errors():
    try:
        from pymongo.errors import PyMongoError

        return (PyMongoError, OSError)
    except ImportError:  # pragma: no cover
        return (OSError,)
