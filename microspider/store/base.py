"""The store interface every backend implements, and the failure document."""

FAILURE_FIELDS = ("seed", "url", "status", "headers", "body", "encoding", "error",
                  "message", "traceback")


class Store:
    """The interface every backend implements (see tests/test_store.py's contract)."""

    def save_failures(self, failures, now=None):
        """Upsert failure documents: latest response kept, attempts += 1."""
        raise NotImplementedError

    def remove_failures(self, fingerprints):
        """Delete the failure documents of these fingerprints (seeds that later succeeded)."""
        raise NotImplementedError

    def iter_failures(self, limit=None):
        """Failure documents, oldest last failure first, at most `limit` of them."""
        raise NotImplementedError

    def get_failure(self, fingerprint):
        """The failure document whose ID (the seed's fingerprint) is `fingerprint`, or None."""
        return next((d for d in self.iter_failures() if d["_id"] == fingerprint), None)

    def count_failures(self):
        """How many failure documents the spider has."""
        raise NotImplementedError

    def failures_by_error(self):
        """{error class name: number of failure documents}."""
        raise NotImplementedError

    def load_failures(self, docs):
        """Write whole failure documents as they are (migrate input); idempotent."""
        raise NotImplementedError

    def save_items(self, items):
        """Store items; one with ``_id`` replaces the stored item of that ID (upsert)."""
        raise NotImplementedError

    def iter_items(self):
        """Every item, in the order first written."""
        raise NotImplementedError

    def count_items(self):
        """How many items the spider has."""
        raise NotImplementedError

    def clear_failures(self):
        """Delete every failure document; returns how many there were."""
        raise NotImplementedError

    def clear_items(self):
        """Delete every item; returns how many there were."""
        raise NotImplementedError

    def close(self):
        """Release the connection; the store is not used afterwards."""


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
