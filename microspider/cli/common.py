"""What every command shares: the resolved environment, the option decorators, error handling, the group."""
import functools
import logging
import os

import click

from .. import config
from ..config import BY_NAME, CONNECTION, OPTIONS
from ..connection import resolve_redis, resolve_store
from ..errors import ConfigError, MicrospiderError, SpiderLoadError
from ..spider import NAME_RE, instantiate, load_spider
from ..state import Redis, is_known
from ..store import open_store

log = logging.getLogger("microspider")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Env:
    """The resolved settings, spider and connections of one command."""

    def __init__(self, spider_ref, flags, allow_name=False):
        self.ref = spider_ref
        self.flags = {k: v for k, v in flags.items() if k in BY_NAME or k == "config"}
        self.spider_cls = None
        self.redis_url = None
        self._redis = None
        self.name = None
        if spider_ref is not None and allow_name and bare_name(spider_ref):
            # a spider that has run is known by name; no need to import anything
            self.settings = config.resolve(self.flags, None)
            if is_known(self.redis, spider_ref):
                self.name = spider_ref
                return
        if spider_ref is not None:
            try:
                self.spider_cls = load_spider(spider_ref)
            except SpiderLoadError as exc:
                if allow_name and bare_name(spider_ref):
                    raise SpiderLoadError("%s (and no spider named %s has run here)"
                                          % (exc, spider_ref)) from None
                raise
            self.name = self.spider_cls.name
        self.settings = config.resolve(self.flags, self.spider_cls)

    @property
    def redis(self):
        if self._redis is None:
            self.redis_url = resolve_redis(self.settings, say=say)
            self._redis = Redis.from_settings(self.settings, url=self.redis_url)
        return self._redis

    @property
    def store_uri(self):
        if not hasattr(self, "_store_uri"):
            self._store_uri = resolve_store(self.settings, say=say)
        return self._store_uri

    def store(self, name=None):
        return open_store(self.store_uri, self.settings.mongo_db, name or self.name)

    def spider(self):
        if self.spider_cls is None:
            raise ConfigError("this command needs the spider's code (a file or module), not only its name")
        return instantiate(self.spider_cls)


def bare_name(ref):
    return bool(NAME_RE.match(ref)) and not ref.endswith(".py") and not os.path.isfile(ref)


def say(line):
    click.echo("microspider: " + line, err=True)


# -- shared options ---------------------------------------------------------------
def option(opt, short=True, **extra):
    names = [opt.flag] + ([opt.short] if short and opt.short else [])
    if opt.convert is config._flag:
        return click.option(*names, opt.name, is_flag=True, flag_value=True, default=None,
                            help=opt.help, **extra)
    default = "" if opt.default is None else " [default: %s]" % opt.default
    return click.option(*names, opt.name, default=None, metavar=metavar(opt),
                        help=opt.help + default, **extra)


def metavar(opt):
    if opt.name == "redis_ca":
        return "FILE"
    if opt.name == "robots_agent":
        return "TOKEN"
    return {"_db": "DB", "_nonneg_int": "N", "_pos_int": "N", "_relay_mode": "0|1|2",
            "_fetcher": "curl|urllib3|impersonate", "_duration": "DURATION",
            "_recrawl": "DURATION", "_profile": "PROFILE"}.get(
        opt.convert.__name__, "VALUE" if opt.convert is config._text else "SECONDS"
        if opt.name in ("idle", "timeout", "relay_delay", "max_retry_after") else "N")


def connection_options(short=True):
    """--redis, -o/-b/-c, --mongo-uri, --mongo-db and --config (short db flags optional)."""
    def decorate(f):
        for opt in reversed(CONNECTION):
            f = option(opt, short=short)(f)
        return click.option("--config", "config", default=None, metavar="FILE",
                            help="config file [default: microspider.cfg]")(f)
    return decorate


def run_options(f):
    for opt in reversed([o for o in OPTIONS if not o.connection]):
        f = option(opt)(f)
    return f


def alert_options(f):
    """--alert-webhook (repeatable), --alert-format, --stall-after, --alert-failure-rate."""
    f = click.option("--alert-failure-rate", type=float, default=None, metavar="SHARE",
                     help="alert when this share of parsed pages failed over 5 min [default: 0.5]")(f)
    f = click.option("--stall-after", type=float, default=None, metavar="SECONDS",
                     help="alert when work waits and no page was done this long [default: 600]")(f)
    f = click.option("--alert-format", type=click.Choice(["dingtalk", "wecom", "feishu", "slack", "json"]),
                     default=None, help="the webhook's message format [default: json]")(f)
    return click.option("--alert-webhook", "alert_webhook", multiple=True, metavar="URL",
                        help="POST alerts (stalled, failure rate, finished) here; repeatable")(f)


def alerter_from(flags):
    """The Alerter the alert options ask for (or None), taking them out of `flags`."""
    from ..web import alerts

    return alerts.from_options(flags.pop("alert_webhook", ()), flags.pop("alert_format", None),
                               flags.pop("stall_after", None), flags.pop("alert_failure_rate", None))


def handle_errors(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except MicrospiderError as exc:
            raise click.UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:
            from redis.exceptions import RedisClusterException

            from ..state.connection import UNAVAILABLE

            if isinstance(exc, UNAVAILABLE + (RedisClusterException,)):
                raise click.UsageError("Redis: %s" % (str(exc).splitlines() or [type(exc).__name__])[0])
            raise
    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="microspider")
def cli():
    """microspider: crawl a large, hostile site with small spiders linked by Redis queues.

    Every command takes the connection options of `run`; every option can also
    be set in microspider.cfg ([microspider] for all, [spider:NAME] for one).
    """


