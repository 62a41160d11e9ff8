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
from .errors import ConfigError, MicrospiderError, SpiderLoadError
from .spider import NAME_RE, instantiate, load_spider
from .store import open_store

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
        if spider_ref is not None and allow_name and _bare_name(spider_ref):
            # a spider that has run is known by name; no need to import anything
            self.settings = config.resolve(self.flags, None)
            if self.redis.work.sismember(keys.SPIDERS, spider_ref):
                self.name = spider_ref
                return
        if spider_ref is not None:
            try:
                self.spider_cls = load_spider(spider_ref)
            except SpiderLoadError as exc:
                if allow_name and _bare_name(spider_ref):
                    raise SpiderLoadError("%s (and no spider named %s has run here)"
                                          % (exc, spider_ref)) from None
                raise
            self.name = self.spider_cls.name
        self.settings = config.resolve(self.flags, self.spider_cls)

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
        return instantiate(self.spider_cls)


def _bare_name(ref):
    return bool(NAME_RE.match(ref)) and not ref.endswith(".py") and not os.path.isfile(ref)


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


def _alerter(flags):
    from .web import alerts

    return alerts.from_options(flags.pop("alert_webhook", ()), flags.pop("alert_format", None),
                               flags.pop("stall_after", None), flags.pop("alert_failure_rate", None))


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
@alert_options
@click.argument("spider")
@handle_errors
def run(spider, **flags):
    """Run SPIDER (a file path or dotted module, optionally :ClassName) until its crawl ends."""
    from . import runner

    alerter = _alerter(flags)
    if flags.get("idle") is not None and flags.get("forever"):
        raise ConfigError("--idle and --forever exclude each other")
    env = Env(spider, flags)
    path, colon, cls_name = spider.partition(":")
    ref = os.path.abspath(path) + colon + cls_name if os.path.isfile(path) else spider
    env.redis  # connect (or fail) before anything starts
    if env.settings.http_proxy:
        from .proxies import ProxyPool

        ProxyPool.from_source(env.settings.http_proxy, redis=env.redis.work)  # validate now
    sys.exit(runner.run(ref, env.spider_cls, env.settings, env.redis_url, env.store_uri, alerter))


@cli.command("_worker", hidden=True)
@handle_errors
def worker_command():
    """A worker process (started by `run`)."""
    from . import runner

    job = os.environ.get(runner.JOB_ENV)
    if not job:
        raise click.UsageError("_worker is started by `microspider run`")
    sys.exit(runner.run_worker(job))


# -- gen ----------------------------------------------------------------------------
@cli.command(short_help="Write ./NAME.py: a new spider from the template.")
@click.option("-u", "--url", "start_url", default="http://example.com/", show_default=True,
              metavar="URL", help="the start URL written into the spider")
@click.argument("name")
@handle_errors
def gen(name, start_url):
    """Write ./NAME.py, a commented spider to start from (and microspider.cfg if none).

    An existing file is never overwritten.
    """
    from .gen import gen as generate

    for path in generate(name, ".", start_url):
        _say("wrote %s" % path)


# -- push ---------------------------------------------------------------------------
@cli.command(short_help="Add seeds to a spider's work queue.")
@connection_options()
@click.option("--file", "seed_file", type=click.File("r", encoding="utf-8"), default=None,
              help="seeds as JSON lines ('-' for stdin); `url` required")
@click.option("--force", is_flag=True, help="push even seeds that are cached")
@click.argument("spider")
@click.argument("urls", nargs=-1)
@handle_errors
def push(spider, urls, seed_file, force, **flags):
    """Add seeds to SPIDER's work queue: URLs as arguments or --file seeds.jsonl.

    Every seed is checked first: one bad line (reported with its number) and
    nothing is pushed.
    """
    from . import ops

    env = Env(spider, flags, allow_name=True)
    if not urls and seed_file is None:
        raise ConfigError("give URLs or --file FILE")
    seeds = ops.read_seeds(urls, seed_file)
    pushed, cached = ops.push_seeds(env.redis, env.name, seeds, force=force)
    _say("%s: %d seeds pushed%s" % (env.name, pushed,
                                      ", %d already cached skipped (--force pushes them)" % cached
                                      if cached else ""))


# -- relay --------------------------------------------------------------------------
@cli.command(short_help="Move the backlog to the work queue, once.")
@connection_options()
@_option(BY_NAME["max_age"])
@click.option("-r", "--clear", "reset", is_flag=True,
              help="reset every seed's age to 0 and move them all, over-age ones included")
@click.argument("spider")
@handle_errors
def relay(spider, reset, **flags):
    """Move SPIDER's backlog to its work queue once, now.

    Every seed whose age is <= --max-age moves, even one still waiting for its
    retry delay; older seeds stay (parked).  -r moves all of them, age reset to 0.
    """
    from . import ops

    env = Env(spider, flags, allow_name=True)
    moved, stayed = ops.relay_once(env.redis, env.name, env.settings.max_age,
                                   env.settings.relay_delay, clear=reset)
    _say("%s: %d seeds moved to the work queue, %d stayed in the backlog%s"
         % (env.name, moved, stayed, " (age over --max-age %d; -r moves them)"
            % env.settings.max_age if stayed and not reset else ""))


# -- parse, retry -------------------------------------------------------------------
def _num_option(what):
    return click.option("-n", "--num", type=click.IntRange(min=1), default=None, metavar="N",
                        help="%s at most N stored failures, oldest first [default: all]" % what)


@cli.command("parse", short_help="Re-parse stored failed responses with the current code.")
@connection_options()
@_num_option("re-parse")
@_option(BY_NAME["no_cache"])
@click.argument("spider")
@handle_errors
def parse_command(spider, num, **flags):
    """Re-run SPIDER's current parse on its stored failed responses, without fetching.

    A success stores the items, sends the new seeds, caches the seed (unless
    --no-cache), removes the failure record and takes the seed out of the
    backlog; a failure stays stored with its attempts counted.
    """
    from . import replay

    env = Env(spider, flags)
    summary = replay.reparse(env.spider(), env.redis, env.store(), limit=num,
                             no_cache=env.settings.no_cache)
    _say(summary.line(env.name))


@cli.command(short_help="Send the seeds of stored failures back to the work queue.")
@connection_options()
@_num_option("retry")
@click.argument("spider")
@handle_errors
def retry(spider, num, **flags):
    """Send the seeds of SPIDER's stored failures back to its work queue, age 0.

    They are fetched again even if cached; their backlog copies are removed.
    The failure records stay until the seeds succeed.
    """
    from . import replay

    env = Env(spider, flags, allow_name=True)
    sent, malformed, unbacklogged = replay.retry(env.redis, env.store(), env.name, limit=num)
    _say("%s: %d seeds sent to the work queue (%d taken out of the backlog)%s"
         % (env.name, sent, unbacklogged,
            ", %d failure records with a malformed seed left alone" % malformed if malformed else ""))


# -- dump ---------------------------------------------------------------------------
@cli.command(short_help="Print the seeds of the work queue and/or backlog.")
@connection_options(short=False)
@click.option("-o", "--work", is_flag=True, help="the work queue")
@click.option("-b", "--backlog", is_flag=True, help="the backlog (in due order)")
@click.option("-q", "--quarantine", is_flag=True, help="the quarantined (malformed) seeds, as found")
@click.option("-f", "--field", "fields", multiple=True, metavar="PATH",
              help="a field to print, repeatable; dotted paths reach into dicts (meta.city) "
                   "[default: url]")
@click.option("--json", "as_json", is_flag=True, help="whole seeds as JSON lines")
@click.option("-n", "--num", type=click.IntRange(min=1), default=None, metavar="N",
              help="stop after N seeds")
@click.argument("spider")
@handle_errors
def dump(spider, work, backlog, quarantine, fields, as_json, num, **flags):
    """Print the seeds of SPIDER's work queue and/or backlog, one per line.

    Without -o/-b/-q: work, then backlog.  Fields are separated by spaces;
    "-" stands for a missing one.  Here -o/-b select queues, so the db options
    are long only (--work-queue, --backlog-queue, --cache-db).
    """
    from . import ops

    env = Env(spider, flags, allow_name=True)
    chosen = [q for q, on in zip(ops.QUEUES, (work, backlog, quarantine)) if on] or ["work", "backlog"]
    if as_json and fields:
        raise ConfigError("--json prints whole seeds; leave out -f")
    try:
        ops.dump(env.redis, env.name, chosen, fields, as_json, out=sys.stdout, limit=num)
        sys.stdout.flush()
    except BrokenPipeError:  # `dump ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# -- clear --------------------------------------------------------------------------
@cli.command(short_help="Remove a spider's cache, queues, failures or items.")
@connection_options(short=False)
@click.option("-c", "--cache", is_flag=True, help="the cache of succeeded seeds")
@click.option("-m", "--failures", is_flag=True, help="the failure store")
@click.option("-i", "--items", is_flag=True, help="the items")
@click.option("-o", "--work", is_flag=True, help="the work queue")
@click.option("-b", "--backlog", is_flag=True, help="the backlog")
@click.option("-q", "--quarantine", is_flag=True, help="the quarantined seeds")
@click.option("--all", "everything", is_flag=True,
              help="all of the above, plus in-flight records, counters and settings "
                   "(refused while workers live)")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.argument("spider")
@handle_errors
def clear(spider, cache, failures, items, work, backlog, quarantine, everything, yes, **flags):
    """Remove parts of SPIDER's state: pick them with -c -m -i -o -b -q or --all.

    Asks for confirmation, which needs a terminal; -y skips it.  Here -o/-b/-c
    select what to remove, so the db options are long only (--work-queue,
    --backlog-queue, --cache-db).
    """
    from . import ops

    env = Env(spider, flags, allow_name=True)
    parts = [p for p, on in zip(("cache", "failures", "items", "work", "backlog", "quarantine"),
                                (cache, failures, items, work, backlog, quarantine)) if on]
    if not parts and not everything:
        raise ConfigError("say what to clear: -c cache, -m failures, -i items, -o work, "
                          "-b backlog, -q quarantine, or --all")
    what = "everything" if everything else ", ".join(parts)
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("clear asks for confirmation: run it on a terminal, or add -y")
        click.confirm("Remove %s of %s (Redis %s)?" % (what, env.name, mask(env.redis.url)),
                      abort=True)
    needs_store = everything or {"failures", "items"} & set(parts)
    removed = ops.clear(env.redis, env.store() if needs_store else None, env.name, parts, everything)
    _say("%s: removed %s" % (env.name, ", ".join("%s %d" % kv for kv in removed.items())))


# -- migrate ------------------------------------------------------------------------
@cli.command(short_help="Write a spider's whole state to a file, or load one.")
@connection_options()
@click.option("-m", "--mode", type=click.Choice(["output", "input"]), required=True,
              help="output: write SPIDER's state to FILE; input: load FILE here")
@click.option("-f", "--file", "path", required=True, metavar="FILE",
              help="the migrate file (gzip'd JSON lines)")
@click.argument("spider", required=False)
@handle_errors
def migrate(mode, path, spider, **flags):
    """Move a spider's cache, queues, failures and items to another environment.

    -m output -f FILE SPIDER writes them to a new FILE; -m input -f FILE loads
    FILE into the Redis and store given by --redis/--mongo-uri (adding to what
    is there).  A truncated or foreign file is refused before anything is written.
    """
    from . import migrate as migration

    if mode == "output":
        if not spider:
            raise ConfigError("migrate -m output needs the SPIDER whose state to write")
        env = Env(spider, flags, allow_name=True)
        counts = migration.write(env.redis, env.store(), env.name, path)
        _say("%s: wrote %s to %s" % (env.name, _counts(counts), path))
        return
    name, _ = migration.check(path)   # the whole file, before anything is written
    if spider and _spider_name(spider) != name:
        raise ConfigError("%s holds spider %s, not %s" % (path, name, _spider_name(spider)))
    env = Env(None, flags)
    loaded = migration.load(env.redis, env.store(name), path, name)
    _say("%s: loaded %s from %s" % (name, _counts(loaded), path))


def _counts(counts):
    return ", ".join("%s %d" % kv for kv in counts.items())


def _spider_name(ref):
    """The name a spider reference stands for: a plain name, or the loaded class's name."""
    if NAME_RE.match(ref) and not ref.endswith(".py") and not os.path.exists(ref):
        try:
            return load_spider(ref).name
        except SpiderLoadError:
            return ref
    return load_spider(ref).name


# -- stat ---------------------------------------------------------------------------
@cli.command(short_help="Queue sizes, cache, failures, items, workers, pages/s.")
@connection_options()
@click.option("--json", "as_json", is_flag=True, help="one JSON object (keys as in the README)")
@click.option("--watch", default=None, is_flag=False, flag_value="2", metavar="[SECONDS]",
              help="refresh every SECONDS (default 2) until Ctrl-C")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="with --watch: stop after N refreshes")
@click.argument("spider", required=False)
@handle_errors
def stat(spider, as_json, watch, count, **flags):
    """Queue sizes, cache, failures, items, workers and pages/s of SPIDER (or of all)."""
    from . import ops

    spider, interval = _watch_interval(spider, watch)
    env = Env(spider, flags, allow_name=True)
    stores = {}  # opened once per spider, however long the watch

    def render():
        names = [env.name] if env.name else status.spiders(env.redis)
        for name in names:
            if name not in stores:
                stores[name] = env.store(name)
        result = {name: ops.stat(env.redis, stores[name], name) for name in names}
        if as_json:
            return json.dumps(result[env.name] if env.name else result, sort_keys=True)
        return "\n".join(ops.format_stat(name, result[name]) for name in names) or "no spiders yet"

    if interval is None:
        click.echo(render())
    else:  # --json: a JSON line per refresh, for a log or a pipe
        ops.watch(render, interval, sys.stdout, sys.stdout.isatty() and not as_json, count=count,
                  plain=as_json)


def _watch_interval(spider, watch):
    """(spider, seconds or None): `stat --watch NAME` gives NAME to --watch; take it back."""
    if watch is None:
        return spider, None
    try:
        interval = float(watch)
    except ValueError:
        if spider is not None:
            raise ConfigError("--watch takes a number of seconds, not %r" % watch) from None
        return watch, 2.0
    if not 0 < interval < 86400:
        raise ConfigError("--watch takes a number of seconds > 0")
    return spider, interval


# -- web ----------------------------------------------------------------------------
@cli.command(short_help="Serve the dashboard, /api/stat and /metrics.")
@connection_options()
@click.option("--host", default="127.0.0.1", metavar="HOST",
              help="address to listen on [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), default=8642, metavar="PORT",
              help="port to listen on, 0 for any free one [default: 8642]")
@click.option("--token", default=None, envvar="MICROSPIDER_WEB_TOKEN", metavar="SECRET",
              help="token the actions need (also $MICROSPIDER_WEB_TOKEN) [default: a random one, printed]")
@alert_options
@handle_errors
def web(host, port, token, **flags):
    """Serve a live dashboard of every spider, /api/stat and /metrics until Ctrl-C.

    Actions (retry, relay, unpark) are POST only and need the token.  A --host
    other than loopback needs --token.
    """
    from .web import server

    alerter = _alerter(flags)
    server.check_binding(host, token)
    env = Env(None, flags)
    sys.exit(server.serve(env.redis, env.store, host, port, token, alerter, say=_say))


# -- export -------------------------------------------------------------------------
@cli.command(short_help="Write a spider's items as JSON lines or CSV.")
@connection_options(short=False)
@click.option("-o", "--output", default="-", metavar="FILE", help="file to write ('-': stdout)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="[default: from the file's extension, else jsonl]")
@click.argument("spider")
@handle_errors
def export(spider, output, fmt, **flags):
    """Write SPIDER's items as JSON lines or CSV.

    Here -o names the output file, so the db options are long only
    (--work-queue, --backlog-queue, --cache-db).
    """
    from . import ops

    env = Env(spider, flags, allow_name=True)
    fmt = fmt or ("csv" if output.endswith(".csv") else "jsonl")
    n = ops.export_items(env.store(), output, fmt)
    _say("%s: %d items exported to %s" % (env.name, n, "stdout" if output == "-" else output))


from . import proxy_cli  # noqa: E402,F401  (registers `microspider proxy`)


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
