"""The Spider base class, collecting what parse yields and sends, and spider loading."""
import importlib
import importlib.util
import inspect
import os
import re
import sys
import threading

from .errors import SendOutsideParse, SpiderLoadError
from .seed import Seed

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_context = threading.local()  # greenlet-local once the worker entry point has patched


class Spider:
    """Base of every microspider: set ``name``, write ``parse``.

    Example::

        class CitySpider(Spider):
            name = "ctrip_city"
            start_urls = ["http://127.0.0.1:8765/"]

            def parse(self, response, seed):
                for a in response.soup.select("a.city"):
                    self.send(Seed(a["href"]), to="ctrip_hotel")

    ``parse`` yields Seeds (to this spider's own work queue) and dicts (items; an
    ``_id`` makes the write an upsert).  Anything it raises sends the response to
    the failure store and the seed to the backlog.  Class attributes named like
    run options (``retry = 5``, ``pool = 50``, ``robots = True``, ``robots_agent =
    "mybot"``, ``max_retry_after = 120``) override microspider.cfg.
    """

    name = None
    start_urls = ()
    upstream = ()          # spiders whose end this one waits for
    headers = {}           # default headers of every request
    user_agents = ()       # rotated per request when given
    handle_status = ()     # error statuses (>= 400) that parse wants to see
    verify = True          # check https certificates (False: accept any)

    def start_seeds(self):
        """The seeds of a fresh crawl; by default one GET per start URL."""
        for url in self.start_urls:
            yield url if isinstance(url, Seed) else Seed(url)

    def parse(self, response, seed):
        """Turn one fetched page into items and further seeds; every spider defines it.

        `response` is a ``requests.Response`` (``status_code``, ``url`` after
        redirects, ``headers``, ``content``, ``text``, ``encoding``, ``cookies``)
        with ``.soup``, the body parsed by BeautifulSoup and lxml.  `seed` is the
        Seed that was fetched; its ``meta`` carries what the spider that sent it
        wanted to pass on.

        Yield (or return a list of) dicts, which are stored as items (an ``_id``
        makes the write an upsert), and Seeds, which go to this spider's own
        work queue; ``self.send(seed, to="other")`` queues a seed for another
        spider.  Nothing is written until parse has finished: if it raises (or
        runs past ``--parse-timeout``) its items and seeds are dropped, the
        response goes to the failure store and the seed to the backlog, to be
        retried and re-parsed later (``microspider parse``).  An error status
        (>= 400) reaches parse only when listed in ``handle_status``.

        Example::

            def parse(self, response, seed):
                for a in response.soup.select("a.hotel"):
                    yield Seed(urljoin(response.url, a["href"]), meta={"city": seed.meta["city"]})
                yield {"_id": seed.url, "title": response.soup.title.string}
        """
        raise NotImplementedError("%s.parse(self, response, seed) is not defined"
                                  % type(self).__name__)

    def is_banned(self, response):
        """True when the site refused us (the fetch is retried through another proxy).

        A 429 (or a 503 with Retry-After) is not a ban but throttling: the host
        cools down for every process and the seed waits, its proxy and session kept.
        """
        return response.status_code == 403 or not response.content

    def send(self, seed_or_url, to=None):
        """Queue a seed (or URL) to spider ``to``'s work queue; default: this spider's."""
        seed = seed_or_url if isinstance(seed_or_url, Seed) else Seed(seed_or_url)
        target = to or self.name
        sent = getattr(_context, "sent", None)
        if sent is None:
            raise SendOutsideParse("send() is only possible while the framework runs parse or "
                                   "start_seeds; yield the Seed, or push it with `microspider push`")
        sent.append((target, seed))


def collect(spider, produce):
    """Run ``produce()`` and return (items, [(target, seed)]) from what it yields and sends.

    Raises whatever produce raises, and TypeError for a yielded value that is
    neither a Seed nor a dict (or a dict that is not JSON-serialisable).
    """
    sent = _context.sent = []
    try:
        items = []
        for value in produce() or ():
            if isinstance(value, Seed):
                sent.append((spider.name, value))
            elif isinstance(value, dict):
                items.append(_check_item(value))
            else:
                raise TypeError("parse yielded %s; yield a Seed or a dict" % type(value).__name__)
        for _, seed in sent:
            seed.check_encodable()   # a ValueError here, not a dead flusher later
        return items, sent
    finally:
        _context.sent = None


def _check_item(item):
    import json

    try:
        json.dumps(item, default=_reject, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError("item is not JSON-serialisable: %s" % exc) from None
    return item


def _reject(value):
    raise TypeError("%s is not JSON-serialisable" % type(value).__name__)


def instantiate(cls):
    """An instance of a Spider class; SpiderLoadError (one line) if its __init__ raises."""
    try:
        return cls()
    except Exception as exc:
        raise SpiderLoadError("%s() failed: %s: %s" % (cls.__name__, type(exc).__name__, exc)) from None


# -- loading -----------------------------------------------------------------
def load_spider(ref):
    """Load a Spider subclass from ``file.py[:Class]`` or ``package.module[:Class]``."""
    path, _, cls_name = ref.partition(":")
    if not path:
        raise SpiderLoadError("no spider given")
    module = _import_file(path) if _looks_like_file(path) else _import_module(path)
    classes = [c for c in vars(module).values()
               if inspect.isclass(c) and issubclass(c, Spider) and c is not Spider
               and c.__module__ == module.__name__]
    if cls_name:
        found = getattr(module, cls_name, None)
        if not (inspect.isclass(found) and issubclass(found, Spider)):
            raise SpiderLoadError("%s has no Spider class named %s" % (path, cls_name))
        return _check_spider_class(found)
    if len(classes) != 1:
        names = ", ".join(sorted(c.__name__ for c in classes)) or "none"
        raise SpiderLoadError("%s defines %d Spider classes (%s); name one as %s:ClassName"
                              % (path, len(classes), names, path))
    return _check_spider_class(classes[0])


def _looks_like_file(path):
    return path.endswith(".py") or os.sep in path or os.path.isfile(path)


def _import_file(path):
    if not os.path.isfile(path):
        raise SpiderLoadError("spider file not found: %s" % path)
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so a spider can import its sibling modules
    module_name = "microspider_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(full))[0])
    spec = importlib.util.spec_from_file_location(module_name, full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise SpiderLoadError("cannot import %s: %s: %s" % (path, type(exc).__name__, exc)) from None
    return module


def _import_module(dotted):
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        raise SpiderLoadError("no spider module %s (%s)" % (dotted, exc)) from None
    except Exception as exc:
        raise SpiderLoadError("cannot import %s: %s: %s" % (dotted, type(exc).__name__, exc)) from None


def _check_spider_class(cls):
    name = cls.name
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpiderLoadError("%s.name must be a non-empty string of letters, digits, _ . -; got %r"
                              % (cls.__name__, name))
    if cls.parse is Spider.parse:
        raise SpiderLoadError("%s does not define parse(self, response, seed)" % cls.__name__)
    return cls
