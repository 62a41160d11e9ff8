"""The command line: a thin click group; each command parses input and calls the library.

Flags default to None so a flag the user did not type never overrides
microspider.cfg or a spider class attribute.  Bad input ends with one line on
stderr and exit status 2.
"""
import functools
import json
import logging
import os
import sys

import click

from . import config, keys, status
from .config import BY_NAME, CONNECTION, OPTIONS
from .connection import Redis, mask, resolve_redis, resolve_store
from .errors import ConfigError, ConnectionFailed, MicrospiderError, SpiderLoadError
from .spider import NAME_RE, load_spider
from .store import open_store

log = logging.getLogger("microspider")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Env:
    """The resolved settings, spider and connections of one command."""

    def __init__(self, spider_ref, flags, allow_name=False):
        self.ref = spider_ref
        self.flags = {k: v for k, v in flags.items() if k in BY_NAME or k == "config"}
        self.spider_cls = None
        self._redis = self._store = None
        if spider_ref is None:
            self.name = None
        else:
            try:
                self.spider_cls = load_spider(spider_ref)
                self.name = self.spider_cls.name
            except SpiderLoadError:
                if not (allow_name and NAME_RE.match(spider_ref) and not spider_ref.endswith(".py")):
                    raise
                self.name = spider_ref
        self.settings = config.resolve(self.flags, self.spider_cls)
        if self.spider_cls is None and self.name:
            if not self.redis.work.sismember(keys.SPIDERS, self.name):
                load_spider(spider_ref)  # raises the loader's own error message
        self.redis_url = None

    @property
    def redis(self):
        if self._redis is None:
            self.redis_url = resolve_redis(self.settings, say=_say)
            self._redis = Redis.from_settings(self.settings, url=self.redis_url)
        return self._redis

    @property
    def store_uri(self):
        if not hasattr(self, "_store_uri"):
            self._store_uri = resolve_store(self.settings, say=_say)
        return self._store_uri

    def store(self, name=None):
        return open_store(self.store_uri, self.settings.mongo_db, name or self.name)

    def spider(self):
        if self.spider_cls is None:
            raise ConfigError("this command needs the spider's code (a file or module), not only its name")
        return self.spider_cls()


def _say(line):
    click.echo("microspider: " + line, err=True)


# -- shared options ---------------------------------------------------------------
def _option(opt, short=True, **extra):
    names = [opt.flag] + ([opt.short] if short and opt.short else [])
    if opt.convert is config._flag:
        return click.option(*names, opt.name, is_flag=True, flag_value=True, default=None,
                            help=opt.help, **extra)
    default = "" if opt.default is None else " [default: %s]" % opt.default
    return click.option(*names, opt.name, default=None, metavar=_metavar(opt),
                        help=opt.help + default, **extra)


def _metavar(opt):
    return {"_db": "DB", "_nonneg_int": "N", "_pos_int": "N", "_relay_mode": "0|1|2"}.get(
        opt.convert.__name__, "VALUE" if opt.convert is config._text else "SECONDS"
        if opt.name in ("idle", "timeout", "relay_delay") else "N")


def connection_options(short=True):
    """--redis, -o/-b/-c, --mongo-uri, --mongo-db and --config (short db flags optional)."""
    def decorate(f):
        for opt in reversed(CONNECTION):
            f = _option(opt, short=short)(f)
        return click.option("--config", "config", default=None, metavar="FILE",
                            help="config file [default: microspider.cfg]")(f)
    return decorate


def run_options(f):
    for opt in reversed([o for o in OPTIONS if not o.connection]):
        f = _option(opt)(f)
    return f


def handle_errors(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (MicrospiderError, ValueError) as exc:
            raise click.UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:
            import redis

            if isinstance(exc, redis.RedisError):
                raise click.UsageError("Redis: %s" % str(exc).splitlines()[0])
            raise
    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="microspider")
def cli():
    """microspider: crawl a large, hostile site with small spiders linked by Redis queues.

    Every command takes the connection options of `run`; every option can also
    be set in microspider.cfg ([microspider] for all, [spider:NAME] for one).
    """


# -- run ----------------------------------------------------------------------------
@cli.command()
@connection_options()
@run_options
@click.argument("spider")
@handle_errors
def run(spider, **flags):
    """Run SPIDER (a file path or dotted module, optionally :ClassName) until its crawl ends."""
    from . import runner

    if flags.get("idle") is not None and flags.get("forever"):
        raise ConfigError("--idle and --forever exclude each other")
    env = Env(spider, flags)
    path, colon, cls_name = spider.partition(":")
    ref = os.path.abspath(path) + colon + cls_name if os.path.isfile(path) else spider
    env.redis  # connect (or fail) before anything starts
    if env.settings.http_proxy:
        from .proxies import ProxyPool

        ProxyPool.from_source(env.settings.http_proxy, redis=env.redis.work)  # validate now
    sys.exit(runner.run(ref, env.spider_cls, env.settings, env.redis_url, env.store_uri))


@cli.command("_worker", hidden=True)
def worker_command():
    """A worker process (started by `run`)."""
    from . import runner

    job = os.environ.get(runner.JOB_ENV)
    if not job:
        raise click.UsageError("_worker is started by `microspider run`")
    sys.exit(runner.run_worker(job))


# -- push ---------------------------------------------------------------------------
@cli.command()
@connection_options()
@click.option("--file", "seed_file", type=click.File("r", encoding="utf-8"), default=None,
              help="seeds as JSON lines ('-' for stdin); `url` required")
@click.option("--force", is_flag=True, help="push even seeds that are cached")
@click.argument("spider")
@click.argument("urls", nargs=-1)
@handle_errors
def push(spider, urls, seed_file, force, **flags):
    """Add seeds to SPIDER's work queue: URLs as arguments or --file seeds.jsonl."""
    from . import ops

    env = Env(spider, flags, allow_name=True)
    if not urls and seed_file is None:
        raise ConfigError("give URLs or --file FILE")
    seeds = ops.read_seeds(urls, seed_file)
    pushed, cached = ops.push_seeds(env.redis, env.name, seeds, force=force)
    _say("%s: %d seeds pushed%s" % (env.name, pushed,
                                      ", %d already cached skipped (--force pushes them)" % cached
                                      if cached else ""))


# -- stat ---------------------------------------------------------------------------
@cli.command()
@connection_options()
@click.option("--json", "as_json", is_flag=True, help="one JSON object (keys as in the README)")
@click.argument("spider", required=False)
@handle_errors
def stat(spider, as_json, **flags):
    """Queue sizes, cache, failures, items, workers and pages/s of SPIDER (or of all)."""
    from . import ops

    env = Env(spider, flags, allow_name=True)
    names = [env.name] if env.name else status.spiders(env.redis)
    result = {name: ops.stat(env.redis, env.store(name), name) for name in names}
    if as_json:
        click.echo(json.dumps(result[env.name] if env.name else result, sort_keys=True))
    else:
        for name in names:
            click.echo(ops.format_stat(name, result[name]))


# -- export -------------------------------------------------------------------------
@cli.command()
@connection_options()
@click.option("-o", "--output", default="-", metavar="FILE", help="file to write ('-': stdout)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="[default: from the file's extension, else jsonl]")
@click.argument("spider")
@handle_errors
def export(spider, output, fmt, **flags):
    """Write SPIDER's items as JSON lines or CSV."""
    from . import ops

    env = Env(spider, flags, allow_name=True)
    fmt = fmt or ("csv" if output.endswith(".csv") else "jsonl")
    n = ops.export_items(env.store(), output, fmt)
    _say("%s: %d items exported to %s" % (env.name, n, "stdout" if output == "-" else output))


def main(argv=None):
    """Run the CLI; returns the exit status (2 for bad input, with one line on stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s microspider: %(message)s", datefmt="%H:%M:%S")
    try:
        cli.main(args=argv, prog_name="microspider", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("microspider: aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo("microspider: error: %s" % exc.format_message(), err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
