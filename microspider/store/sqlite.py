"""The embedded backend: one SQLite file (WAL) under ./.microspider/, shared by every process."""
import json
import os
import sqlite3
import time
import uuid

from ..errors import StoreError
from .base import FAILURE_FIELDS, Store

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
            for row in rows:
                yield _document(*row)
                n += 1
                if limit and n >= limit:
                    return
            if len(rows) < 100:
                return
            after = (rows[-1][3], rows[-1][0])

    def get_failure(self, fingerprint):
        rows = self._read("SELECT id, attempts, first_failed, last_failed, body, doc FROM failures"
                          " WHERE spider=? AND id=?", (self.spider, fingerprint))
        return _document(*rows[0]) if rows else None

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


def _document(fid, attempts, first, last, body, doc):
    """A failure document from its row."""
    out = json.loads(doc)
    out.update(_id=fid, attempts=attempts, first_failed=first, last_failed=last,
               body=None if body is None else bytes(body))
    return out
