"""Failure and item stores: one interface, a MongoDB backend and an embedded SQLite one.

A failure document, one per seed fingerprint::

    {"_id": fingerprint, "seed": {...}, "url": ..., "status": 503, "headers": {...},
     "body": b"...", "encoding": "utf-8", "error": "ValueError", "message": "...",
     "traceback": "...", "attempts": 3, "first_failed": 1700000000.0, "last_failed": ...}

Items are dicts; an item with ``_id`` replaces the stored one (upsert).
Collections: ``<spider>_failures`` and ``<spider>_items``.
"""
import json
import os
import sqlite3
import time
import uuid

from .errors import ConnectionFailed, StoreError

FAILURE_FIELDS = ("seed", "url", "status", "headers", "body", "encoding", "error",
                  "message", "traceback")


class Store:
    """The interface every backend implements (see tests/test_store.py's contract)."""

    def save_failures(self, failures, now=None):
        """Upsert failure documents: latest response kept, attempts += 1."""
        raise NotImplementedError

    def remove_failures(self, fingerprints):
        raise NotImplementedError

    def iter_failures(self, limit=None):
        raise NotImplementedError

    def count_failures(self):
        raise NotImplementedError

    def failures_by_error(self):
        raise NotImplementedError

    def load_failures(self, docs):
        """Write whole failure documents as they are (migrate input); idempotent."""
        raise NotImplementedError

    def save_items(self, items):
        raise NotImplementedError

    def iter_items(self):
        raise NotImplementedError

    def count_items(self):
        raise NotImplementedError

    def clear_failures(self):
        raise NotImplementedError

    def clear_items(self):
        raise NotImplementedError

    def close(self):
        pass


def failure_doc(seed, error, message, traceback, response=None):
    """The fields of a failure document for a seed, from a response if there was one."""
    doc = {"_id": seed.fingerprint, "seed": seed.to_dict(), "url": seed.url, "status": None,
           "headers": {}, "body": None, "encoding": None, "error": error,
           "message": _utf8(message), "traceback": _utf8(traceback)}
    if response is not None:
        doc.update(url=response.url, status=response.status_code,
                   headers=dict(response.headers), body=response.content,
                   encoding=response.encoding)
    return doc


def _utf8(text):
    """Text every store can encode: lone surrogates become backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if text else text


# -- MongoDB ---------------------------------------------------------------
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


# -- embedded SQLite -----------------------------------------------------------
class SQLiteStore(Store):
    """The embedded store: one SQLite file (WAL) shared by every process on the machine."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS failures (
        spider TEXT NOT NULL, id TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL,
        first_failed REAL, last_failed REAL, body BLOB, doc TEXT NOT NULL,
        PRIMARY KEY (spider, id));
    CREATE TABLE IF NOT EXISTS items (
        spider TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (spider, id));
    CREATE INDEX IF NOT EXISTS items_seq ON items (spider, seq);
    CREATE INDEX IF NOT EXISTS failures_last ON failures (spider, last_failed, id);
    """

    def __init__(self, path, spider):
        self.path = path
        self.spider = spider
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(self.SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError("embedded store %s cannot be opened: %s" % (path, exc)) from exc

    def _write(self, sql_rows):
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in sql_rows:
                    self.db.executemany(sql, rows)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError("embedded store %s failed: %s" % (self.path, exc)) from exc

    def _read(self, sql, args=()):
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError("embedded store %s failed: %s" % (self.path, exc)) from exc

    def save_failures(self, failures, now=None):
        now = time.time() if now is None else now
        rows = [(self.spider, d["_id"], d["error"], now, now, d["body"],
                 json.dumps({k: d[k] for k in FAILURE_FIELDS if k != "body"}, ensure_ascii=False))
                for d in failures]
        self._write([(
            "INSERT INTO failures (spider, id, error, attempts, first_failed, last_failed, body, doc)"
            " VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (spider, id) DO UPDATE SET"
            " error=excluded.error, attempts=attempts+1, last_failed=excluded.last_failed,"
            " body=excluded.body, doc=excluded.doc", rows)])

    def remove_failures(self, fingerprints):
        if fingerprints:
            self._write([("DELETE FROM failures WHERE spider=? AND id=?",
                          [(self.spider, fp) for fp in fingerprints])])

    def iter_failures(self, limit=None):
        """Oldest failure first, read in pages so large bodies stream."""
        after, n = (-1e300, ""), 0
        while True:
            rows = self._read(
                "SELECT id, attempts, first_failed, last_failed, body, doc FROM failures"
                " WHERE spider=? AND (last_failed, id) > (?, ?) ORDER BY last_failed, id LIMIT 100",
                (self.spider,) + after)
            for fid, attempts, first, last, body, doc in rows:
                out = json.loads(doc)
                out.update(_id=fid, attempts=attempts, first_failed=first, last_failed=last,
                           body=None if body is None else bytes(body))
                yield out
                n += 1
                if limit and n >= limit:
                    return
            if len(rows) < 100:
                return
            after = (rows[-1][3], rows[-1][0])

    def count_failures(self):
        return self._read("SELECT COUNT(*) FROM failures WHERE spider=?", (self.spider,))[0][0]

    def failures_by_error(self):
        return dict(self._read("SELECT error, COUNT(*) FROM failures WHERE spider=? GROUP BY error",
                               (self.spider,)))

    def load_failures(self, docs):
        rows = [(self.spider, d["_id"], d.get("error"), d.get("attempts", 1), d.get("first_failed"),
                 d.get("last_failed"), d.get("body"),
                 json.dumps({k: d.get(k) for k in FAILURE_FIELDS if k != "body"}, ensure_ascii=False))
                for d in docs]
        self._write([("INSERT OR REPLACE INTO failures (spider, id, error, attempts, first_failed,"
                      " last_failed, body, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)])

    def save_items(self, items):
        rows = []
        for item in items:
            item_id = item.get("_id")
            if item_id is None:
                item = dict(item, _id=uuid.uuid4().hex)
                item_id = item["_id"]
            rows.append((self.spider, json.dumps(item_id), json.dumps(item, ensure_ascii=False)))
        # seq keeps the first-write order; an upsert keeps its place
        self._write([(
            "INSERT INTO items (spider, id, seq, doc) VALUES (?, ?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM items WHERE spider=?1), ?)"
            " ON CONFLICT (spider, id) DO UPDATE SET doc=excluded.doc",
            [(s, i, d) for s, i, d in rows])])

    def iter_items(self):
        last = 0
        while True:  # pages, so a large table streams
            rows = self._read("SELECT seq, doc FROM items WHERE spider=? AND seq>? ORDER BY seq LIMIT 1000",
                              (self.spider, last))
            for seq, doc in rows:
                last = seq
                yield json.loads(doc)
            if len(rows) < 1000:
                return

    def count_items(self):
        return self._read("SELECT COUNT(*) FROM items WHERE spider=?", (self.spider,))[0][0]

    def clear_failures(self):
        n = self.count_failures()
        self._write([("DELETE FROM failures WHERE spider=?", [(self.spider,)])])
        return n

    def clear_items(self):
        n = self.count_items()
        self._write([("DELETE FROM items WHERE spider=?", [(self.spider,)])])
        return n

    def close(self):
        self.db.close()


def open_store(uri, db, spider):
    """The store for a resolved URI: mongodb://, mongomock:// or sqlite:///path."""
    if uri.startswith("sqlite:///"):
        return SQLiteStore(uri[len("sqlite:///"):], spider)
    if uri.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        return MongoStore(uri, db, spider)
    raise ConnectionFailed("unsupported store URI %r: use mongodb://, mongomock:// or sqlite:///"
                           % uri)
