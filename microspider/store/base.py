"""The store interface every backend implements, and the failure document."""

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
