"""Run options, resolved once: defaults < microspider.cfg < environment < spider class < flags.

Every option is declared once in OPTIONS (name, type, default, help); the CLI,
the config file reader and the spider-attribute override all derive from it.
The resolved Settings are frozen.
"""
import configparser
import dataclasses
import math
import os

from .errors import ConfigError

CONFIG_FILE = "microspider.cfg"
ENVIRONMENT = {"redis": "MICROSPIDER_REDIS", "redis_ca": "MICROSPIDER_REDIS_CA",
               "mongo_uri": "MICROSPIDER_MONGO_URI"}


def _nonneg_int(text):
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _pos_int(text):
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _pos_float(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number > 0")
    return value


def _nonneg_float(text):
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number >= 0")
    return value


def _relay_mode(text):
    value = int(text)
    if value not in (0, 1, 2):
        raise ValueError("must be 0, 1 or 2")
    return value


def _db(text):
    value = int(text)
    if not 0 <= value <= 15:
        raise ValueError("must be a db number from 0 to 15")
    return value


def _flag(text):
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _bool(text):
    """A yes/no option given a value (``--render-fallback off``), unlike a flag that can only say yes."""
    return _flag(text)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text):
    """Seconds from `90s`, `12h`, `7d` (s, m, h, d, w; a bare number is seconds)."""
    raw = str(text).strip().lower()
    unit = DURATION_UNITS.get(raw[-1:]) if raw else None
    try:
        value = float(raw[:-1] if unit else raw) * (unit or 1)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a duration > 0 such as 90s, 12h or 7d")
    return value


def _recrawl(text):
    """A ``_duration`` the success cache can honour (at least its one-minute resolution)."""
    from .state.cache import check_recrawl  # at call time: state imports redis, the entry point patches first

    value = _duration(text)
    check_recrawl(value)
    return value


def _text(text):
    return str(text)


def _fetcher(text):
    value = str(text).strip().lower()
    if value not in ("curl", "urllib3", "impersonate"):
        raise ValueError("must be curl, urllib3 or impersonate")
    return value


def _profile(text):
    value = str(text).strip().lower()
    if not value or not all(c.isalnum() or c in "_-." for c in value):
        raise ValueError("must be a browser profile such as chrome, edge, safari or firefox")
    return value


def _engine(text):
    value = str(text).strip().lower()
    if value not in ("chromium", "lightpanda"):
        raise ValueError("must be chromium or lightpanda")
    return value


def _warmup(text):
    value = str(text).strip().lower()
    if value in ("", "none", "off"):
        return None
    if value != "render":
        raise ValueError("must be render (or none)")
    return value


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    convert: object
    default: object
    help: str
    short: str = None
    connection: bool = False

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


OPTIONS = [
    Option("redis", _text, None, "Redis address: host:port, redis:// or rediss:// URL, a "
           "cluster's seed nodes redis://h1:7000,h2:7000, or redis+sentinel://H:P,H:P/SERVICE; "
           "USER:PASSWORD@ logs in with an ACL user [default: 127.0.0.1:6379, else the "
           "embedded one]", connection=True),
    Option("redis_ca", _text, None, "CA file that signed the Redis server's TLS certificate "
           "(rediss://, rediss+sentinel://)", connection=True),
    Option("work_queue", _db, 0, "db of the work queue", "-o", connection=True),
    Option("backlog_queue", _db, 0, "db of the backlog", "-b", connection=True),
    Option("cache_db", _db, 0, "db of the cache", "-c", connection=True),
    Option("mongo_uri", _text, None, "failure/item store: mongodb:// URI "
           "[default: mongodb://127.0.0.1:27017, else the embedded store]", connection=True),
    Option("mongo_db", _text, "microspiders", "MongoDB database", connection=True),
    Option("retry", _nonneg_int, 3, "immediate retries of a failed fetch", "-r"),
    Option("no_cache", _flag, False, "fetch seeds even when cached"),
    Option("recrawl", _recrawl, None, "fetch a cached seed again when its success is older than "
           "this (90s, 12h, 7d; at least 1m, and it may come a minute early) [default: never]"),
    Option("every", _duration, None, "push the start seeds again every DURATION (90s, 12h, 7d); "
           "the run then ends only by SIGTERM/SIGINT"),
    Option("worker", _pos_int, 1, "worker processes", "-w"),
    Option("http_proxy", _text, None, "proxy URL, file of proxies, or Redis set "
           "(redis://host:port/db#key or set:KEY)", "-p"),
    Option("max_age", _nonneg_int, 5, "backlog passes before a seed stays parked", "-m"),
    Option("relay_mode", _relay_mode, 0, "0: relay continuously, 1: when work is empty, 2: never", "-d"),
    Option("pool", _pos_int, 100, "greenlets per process"),
    Option("no_backlog", _flag, False, "drop (and count) seeds whose fetch failed"),
    Option("relay_delay", _nonneg_float, 1.0, "seconds before a backlogged seed comes back, "
           "doubling with age (capped at 300 s)"),
    Option("timeout", _pos_float, 20.0, "seconds to connect and between bytes of a fetch"),
    Option("rate", _pos_float, None, "requests per second for the whole spider, all processes"),
    Option("rate_per_host", _pos_float, None, "requests per second per target host"),
    Option("idle", _nonneg_float, 5.0, "exit after the crawl has been finished this long"),
    Option("forever", _flag, False, "never exit by itself"),
    Option("max_body", _pos_int, 10 * 1024 * 1024, "largest response body in bytes"),
    Option("parse_timeout", _pos_float, 60.0, "seconds a parse may run before it is a failure "
           "(ParseTimeout)"),
    Option("no_wait_replica", _flag, False, "on a Redis Cluster or behind Sentinel, acknowledge "
           "a batch without waiting for a replica to confirm its writes (faster; a master "
           "failover may then lose seeds sent to other spiders)"),
    Option("max_crashes", _pos_int, 3, "deliveries of a seed that killed or hung its worker "
           "before it is stored as WorkerCrashed"),
    Option("fetcher", _fetcher, "curl", "HTTP client: curl (libcurl on the gevent loop), urllib3, or "
           "impersonate (a browser's TLS and HTTP/2 identity, see --impersonate)"),
    Option("impersonate", _profile, None, "fetch with this browser's TLS, HTTP/2 and default headers "
           "(curl_cffi profile: chrome, edge, safari, firefox, chrome145...; implies --fetcher "
           "impersonate; pip install microspider[impersonate])"),
    Option("render", _flag, False, "render pages in headless Chromium (pip install microspider[render])"),
    Option("browser", _text, None, "the Chromium to render with [default: chromium, chromium-browser "
           "or google-chrome on PATH]"),
    Option("render_engine", _engine, "chromium", "the browser that renders: chromium, or lightpanda "
           "(pip install microspider[lightpanda])"),
    Option("render_fallback", _bool, True, "a page Lightpanda fails on is rendered again in Chromium "
           "(when one is installed) before it counts as a failure"),
    Option("render_pages", _pos_int, None, "pages rendered at once per process "
           "[default: 16 with chromium, 64 with lightpanda]"),
    Option("render_tabs", _pos_int, None, "tabs (browser contexts) per browser process "
           "[default: 16]"),
    Option("sessions", _nonneg_int, 0, "sessions (identity + proxy + cookie jar) shared by every "
           "process of the spider through Redis; 0: off"),
    Option("session_max_uses", _pos_int, 50, "requests a session serves before it is retired"),
    Option("session_warmup", _warmup, None, "render: the first page of a new session is rendered "
           "in Chromium, the rest fetched with the cookies it earned"),
    Option("max_retry_after", _nonneg_float, 600.0, "longest Retry-After honoured: a host that "
           "answers 429 (or 503 with Retry-After) cools down that long at most, and a seed asked to "
           "wait longer goes to the backlog"),
    Option("robots", _flag, False, "obey each origin's robots.txt (fetched once, shared through "
           "Redis for 24 h): disallowed seeds are skipped (robots_denied), Crawl-delay spaces requests"),
    Option("robots_agent", _text, "*", "the user-agent token whose robots.txt group applies "
           "[default: the * group]"),
    Option("render_recycle", _pos_int, 200, "pages a browser renders before it is replaced"),
]
BY_NAME = {o.name: o for o in OPTIONS}
CONNECTION = [o for o in OPTIONS if o.connection]

Settings = dataclasses.make_dataclass(
    "Settings", [(o.name, object, dataclasses.field(default=o.default)) for o in OPTIONS]
    + [("configured", frozenset, dataclasses.field(default=frozenset()))],
    frozen=True)
Settings.__doc__ = "Resolved run options; `configured` names those set anywhere but the defaults."


def convert(name, value, where):
    """Convert a raw value of option `name`; ConfigError naming `where` if it is bad."""
    option = BY_NAME.get(name)
    if option is None:
        raise ConfigError("unknown option %r in %s" % (name, where))
    if value is None:
        return None
    try:
        return option.convert(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError("bad value %r for %s in %s: %s" % (value, option.flag, where, exc)) from None


def read_config(path, explicit=False):
    """Read microspider.cfg: {section: {option: raw}}; missing and not explicit -> {}."""
    if not os.path.exists(path):
        if explicit:
            raise ConfigError("config file not found: %s" % path)
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError("malformed config file %s: %s" % (path, first)) from None
    sections = {}
    for section in parser.sections():
        if section != "microspider" and not section.startswith("spider:"):
            raise ConfigError("%s: unknown section [%s]; use [microspider] or [spider:NAME]"
                              % (path, section))
        sections[section] = {k.replace("-", "_"): v for k, v in parser.items(section)}
    return sections


def resolve(flags, spider_cls=None, config_path=None, environ=None):
    """Layer the options and return frozen Settings.

    `flags` maps option names to values typed on the command line (None = not typed).
    """
    environ = os.environ if environ is None else environ
    explicit = config_path is not None
    path = config_path or flags.get("config") or CONFIG_FILE
    sections = read_config(path, explicit=explicit or bool(flags.get("config")))
    layers = [("%s [microspider]" % path, sections.get("microspider", {}))]
    name = getattr(spider_cls, "name", None)
    if name:
        layers.append(("%s [spider:%s]" % (path, name), sections.get("spider:" + name, {})))
    layers.append(("the environment", {k: environ[v] for k, v in ENVIRONMENT.items() if environ.get(v)}))
    if spider_cls is not None:
        attrs = {o.name: getattr(spider_cls, o.name) for o in OPTIONS if hasattr(spider_cls, o.name)}
        layers.append(("%s class attributes" % spider_cls.__name__, attrs))
    layers.append(("the command line", {k: v for k, v in flags.items() if k != "config"}))

    values = {o.name: o.default for o in OPTIONS}
    configured = set()
    for where, layer in layers:
        for key, raw in layer.items():
            value = convert(key, raw, where)
            if value is not None:
                values[key] = value
                configured.add(key)
    return Settings(configured=frozenset(configured), **values)
