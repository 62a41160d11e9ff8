"""``try``: a spider's ``parse`` run once on one URL, or on one stored failure, writing nothing.

What a run does for one seed, minus everything that persists: the spider's own
fetch settings (headers, User-Agents, proxies, fetcher, render settings) and
one request (more only when ``--retry`` asks), then ``parse`` once under
``--parse-timeout``.  What parse yields and what it sends with ``self.send``
are collected by ``spider.collect`` into a list, as the worker collects them
before its outcome goes to Redis; here that list is only printed.

Nothing here opens Redis or starts the embedded server; only ``--failure``
reads the store, and an embedded store that does not exist yet is not created.
"""
import dataclasses
import os
import signal
import traceback

from ..crawl.outcome import parse_response
from ..errors import ConfigError, ParseTimeout
from ..seed import Seed
from ..store import open_store
from ..transport import make_fetcher
from ..transport.response import from_failure

ALARM_REPEAT = 0.25   # a SIGALRM that lands while gevent's hub runs is tried again this soon
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclasses.dataclass
class Trial:
    """What one try gave: status and final URL, items, seeds with their target, the error if any."""

    status: int = None
    url: str = None
    items: list = dataclasses.field(default_factory=list)
    seeds: list = dataclasses.field(default_factory=list)     # [(target spider, Seed)]
    error: BaseException = None
    traceback: str = None

    @property
    def ok(self):
        return self.error is None

    def to_dict(self):
        """The ``--json`` object: status, url, items, seeds as [{"to", "seed"}], error."""
        error = None if self.ok else {"type": type(self.error).__name__, "message": str(self.error)}
        return {"status": self.status, "url": self.url, "items": self.items,
                "seeds": [{"to": to, "seed": seed.to_dict()} for to, seed in self.seeds],
                "error": error}


# -- one URL ------------------------------------------------------------------------
def try_url(spider, settings, url, retry=0, proxies=None):
    """Fetch `url` as a run of `spider` would (with `retry` extra attempts) and parse it once.

    A malformed URL raises BadSeed before anything is fetched; a failed fetch
    is a Trial with the FetchError and no status.  As in a run, a page whose
    parse raised on another render engine's DOM is rendered in Chromium and
    parsed once more (``render_fallback``).
    """
    seed = Seed(url)
    settings = dataclasses.replace(settings, retry=retry)
    fetcher = transport(spider, settings, proxies)
    try:
        try:
            response = fetcher.fetch(seed)
        except Exception as exc:   # FetchError, or an is_banned that raised: the fetch failed
            return Trial(url=url, error=exc, traceback=traceback.format_exc())
        trial = parse_once(spider, response, seed, settings.parse_timeout)
        if trial.error is not None and not isinstance(trial.error, ParseTimeout):
            again = fetcher.rerender(seed, response)
            if again is not None:
                trial = parse_once(spider, again, seed, settings.parse_timeout)
        return trial
    finally:
        fetcher.close()


def transport(spider, settings, proxies=None):
    """The fetcher a worker of this spider would use (a browser when ``render``)."""
    return make_fetcher(spider, settings, proxies=proxies)


# -- one stored failure ---------------------------------------------------------------
def try_failure(spider, settings, store_uri, failure_id):
    """Parse once the response stored in failure `failure_id` (no network, nothing written).

    ConfigError (one line) when there is no such failure, or no response was stored with it.
    """
    doc = read_failure(store_uri, settings.mongo_db, spider.name, failure_id)
    if doc.get("status") is None:
        raise ConfigError("failure %s of %s has no stored response (%s); `microspider retry` "
                          "fetches it again" % (failure_id, spider.name, doc.get("error")))
    return parse_once(spider, from_failure(doc), Seed.from_dict(doc["seed"]), settings.parse_timeout)


def read_failure(store_uri, db, name, failure_id):
    """The stored failure document `failure_id` of spider `name`, read without creating a store."""
    if store_uri.startswith("sqlite:///") and not os.path.exists(store_uri[len("sqlite:///"):]):
        raise ConfigError("no stored failure %s for %s: there is no store at %s"
                          % (failure_id, name, store_uri[len("sqlite:///"):]))
    store = open_store(store_uri, db, name)
    try:
        doc = store.get_failure(failure_id)
    finally:
        store.close()
    if doc is None:
        raise ConfigError("no stored failure %s for %s; `microspider failures %s` lists them"
                          % (failure_id, name, name))
    return doc


# -- parse ------------------------------------------------------------------------------
def parse_once(spider, response, seed, timeout):
    """Run ``parse`` once on `response` under `timeout` seconds; a Trial of what came out."""
    trial = Trial(status=response.status_code, url=response.url)
    try:
        trial.items, trial.seeds = within(timeout, lambda: parse_response(spider, response, seed))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # sys.exit() in parse is a parse failure too, as in a run
        trial.error, trial.traceback = exc, spider_traceback(exc)
    return trial


def spider_traceback(exc):
    """The traceback of `exc` from the first frame outside microspider: the spider's own code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(PACKAGE):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def within(seconds, call):
    """``call()``, ended by ParseTimeout after `seconds` whether or not it yields to gevent.

    A gevent Timeout ends a call that waits on the hub; SIGALRM ends one that
    never yields (a plain ``while True``), raising only in the calling greenlet.
    """
    import gevent

    me, late = gevent.getcurrent(), ParseTimeout("parse ran past --parse-timeout %gs" % seconds)

    def alarm(signum, frame):
        if gevent.getcurrent() is me:
            raise late

    try:
        previous = signal.signal(signal.SIGALRM, alarm)
    except ValueError:   # not the main thread: the gevent Timeout alone
        previous = None
    else:
        signal.setitimer(signal.ITIMER_REAL, seconds, ALARM_REPEAT)
    try:
        with gevent.Timeout(seconds, late):
            return call()
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
