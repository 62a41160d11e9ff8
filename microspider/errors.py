"""One exception tree, rooted at MicrospiderError."""


class MicrospiderError(Exception):
    """Base of every error microspider raises on purpose."""


class ConfigError(MicrospiderError, ValueError):
    """A bad option value, config file or spider; the CLI prints it and exits 2."""


class SpiderLoadError(ConfigError):
    """The <spider> argument names no loadable Spider."""


class ConnectionFailed(MicrospiderError):
    """A configured Redis or MongoDB does not answer."""


class StoreError(MicrospiderError):
    """The failure/item store could not be written; the seed stays safe in the backlog."""


class FetchError(MicrospiderError):
    """A fetch failed after its retries (connection error, timeout, retryable status, ban)."""


class HTTPStatusError(MicrospiderError):
    """A non-retryable error status (4xx other than 429) reached parse; stored as a failure."""


class MalformedSeed(MicrospiderError, ValueError):
    """A queued seed that cannot be decoded; it goes to quarantine."""


class ParseTimeout(MicrospiderError):
    """``parse`` ran past ``--parse-timeout``; stored as a parse failure with this error name."""


class WorkerCrashed(MicrospiderError):
    """A seed killed or hung its worker process ``--max-crashes`` times; stored with this name."""


class ProxyError(ConfigError):
    """A proxy URL, file or set that cannot be used."""


class MigrateError(ConfigError):
    """A migrate file that cannot be read or written; nothing was loaded."""


class NoProxy(FetchError):
    """No proxy of the pool is usable right now."""


class BadSeed(MicrospiderError, ValueError):
    """A Seed built with a bad URL, method or field."""


class LockTimeout(MicrospiderError, TimeoutError):
    """A Redis lock stayed held elsewhere for longer than we were willing to wait; try again later."""


class SendOutsideParse(MicrospiderError, RuntimeError):
    """``Spider.send`` was called while the framework ran neither ``parse`` nor ``start_seeds``."""


class NotYet(MicrospiderError):
    """A seed that may not be fetched now: the worker holds it `wait` seconds, then tries again.

    Not a failure: it counts toward neither ``--retry`` nor the failure store.
    """

    def __init__(self, message, wait):
        super().__init__(message)
        self.wait = wait


class Throttled(NotYet):
    """The host answered 429 (or 503 with Retry-After), or is cooling down after one: wait `wait` s.

    `over_cap`: its Retry-After is longer than ``--max-retry-after``; the seed goes to the backlog.
    """

    def __init__(self, message, wait, over_cap=False):
        super().__init__(message, wait)
        self.over_cap = over_cap
