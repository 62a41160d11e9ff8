"""The store interface every backend implements, and the failure document."""

FAILURE_FIELDS = ("seed", "url", "status", "headers", "body", "encoding", "error",
                  "message", "traceback")


class Store:
    """Where one spider's failures and items live: the interface every backend implements.

    A backend is bound to one spider when it is opened (``open_store(uri, db,
    spider)``) and holds two collections: failure documents, one per seed
    fingerprint (``_id``), and items.  Every write may raise ``StoreError``; the
    worker then leaves the batch's seeds in the backlog, so a store outage loses
    nothing.  Reads stream (a large collection is never loaded whole).  One
    contract test (tests/test_store.py) runs against every backend; a new
    backend subclasses Store and passes it.

    Example::

        store = open_store("sqlite:///crawl.sqlite3", "microspiders", "ctrip_hotel")
        store.save_items([{"_id": "h1", "name": "Grand"}])
        for doc in store.iter_failures(limit=10):
            print(doc["url"], doc["error"], doc["attempts"])
        store.close()
    """

    def save_failures(self, failures, now=None):
        """Upsert failure documents (from ``failure_doc``) by ``_id``.

        A new one gets ``attempts = 1`` and ``first_failed = last_failed = now``;
        an existing one keeps ``first_failed``, gets ``attempts + 1``, and the
        latest response, error and ``last_failed`` replace the old ones.
        """
        raise NotImplementedError

    def remove_failures(self, fingerprints):
        """Delete the failure documents of these fingerprints (the seeds now succeeded); unknown ones are ignored."""
        raise NotImplementedError

    def iter_failures(self, limit=None):
        """Failure documents, least recently failed first, at most `limit` (None: all).

        Each is a dict of ``FAILURE_FIELDS`` plus ``_id``, ``attempts``,
        ``first_failed`` and ``last_failed``; ``body`` is bytes (or None).
        """
        raise NotImplementedError

    def get_failure(self, fingerprint):
        """The failure document whose ID (the seed's fingerprint) is `fingerprint`, or None."""
        return next((d for d in self.iter_failures() if d["_id"] == fingerprint), None)

    def count_failures(self):
        """How many failure documents the spider has."""
        raise NotImplementedError

    def failures_by_error(self):
        """``{error class name: how many failure documents}``."""
        raise NotImplementedError

    def load_failures(self, docs):
        """Write whole failure documents as they are (migrate input); idempotent."""
        raise NotImplementedError

    def save_items(self, items):
        """Store items (JSON-serialisable dicts): one with ``_id`` replaces that item, one without is added."""
        raise NotImplementedError

    def iter_items(self):
        """Every stored item, as a dict with its ``_id`` (one is given to items saved without)."""
        raise NotImplementedError

    def count_items(self):
        """How many items the spider has."""
        raise NotImplementedError

    def clear_failures(self):
        """Delete every failure document of the spider; returns how many went."""
        raise NotImplementedError

    def clear_items(self):
        """Delete every item of the spider; returns how many went."""
        raise NotImplementedError

    def close(self):
        """Release the connection or file; the store is unusable afterwards."""


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
