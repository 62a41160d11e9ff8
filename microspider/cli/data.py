"""``migrate``, ``stat`` and ``export``: a spider's state out (and in)."""
import json
import os
import sys

import click

from ..config import BY_NAME
from ..errors import ConfigError, SpiderLoadError
from ..spider import NAME_RE, load_spider
from .common import Env, cli, connection_options, handle_errors, option, say

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
    from ..ops import migrate as migration

    if mode == "output":
        if not spider:
            raise ConfigError("migrate -m output needs the SPIDER whose state to write")
        env = Env(spider, flags, allow_name=True)
        counts = migration.write(env.redis, env.store(), env.name, path)
        say("%s: wrote %s to %s" % (env.name, _counts(counts), path))
        return
    name, _ = migration.check(path)   # the whole file, before anything is written
    if spider and _spider_name(spider) != name:
        raise ConfigError("%s holds spider %s, not %s" % (path, name, _spider_name(spider)))
    env = Env(None, flags)
    loaded = migration.load(env.redis, env.store(name), path, name)
    say("%s: loaded %s from %s" % (name, _counts(loaded), path))


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
@click.option("--json", "as_json", is_flag=True, help="one JSON object (keys: see docs/commands.md, stat)")
@click.option("--watch", default=None, is_flag=False, flag_value="2", metavar="[SECONDS]",
              help="refresh every SECONDS (default 2) until Ctrl-C")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="with --watch: stop after N refreshes")
@option(BY_NAME["recrawl"])
@click.argument("spider", required=False)
@handle_errors
def stat(spider, as_json, watch, count, **flags):
    """Queue sizes, cache, failures, items, workers and pages/s of SPIDER (or of all)."""
    from ..ops import stats

    spider, interval = _watch_interval(spider, watch)
    env = Env(spider, flags, allow_name=True)
    stores = {}  # opened once per spider, however long the watch

    def render():
        names = [env.name] if env.name else stats.spiders(env.redis)
        for name in names:
            if name not in stores:
                stores[name] = env.store(name)
        result = {name: stats.stat(env.redis, stores[name], name) for name in names}
        if as_json:
            return json.dumps(result[env.name] if env.name else result, sort_keys=True)
        recrawl = env.settings.recrawl
        return "\n".join(stats.format_stat(name, result[name], recrawl and stats.cache_due(
            env.redis, name, recrawl), recrawl) for name in names) or "no spiders yet"

    if interval is None:
        click.echo(render())
    else:  # --json: a JSON line per refresh, for a log or a pipe
        stats.watch(render, interval, sys.stdout, sys.stdout.isatty() and not as_json, count=count,
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
    from ..ops.export import export_items

    env = Env(spider, flags, allow_name=True)
    fmt = fmt or ("csv" if output.endswith(".csv") else "jsonl")
    n = export_items(env.store(), output, fmt)
    say("%s: %d items exported to %s" % (env.name, n, "stdout" if output == "-" else output))


