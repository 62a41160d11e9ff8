"""``push``, ``relay``, ``dump`` and ``clear``: a spider's queues by hand."""
import os
import sys

import click

from ..config import BY_NAME
from ..connection import mask
from ..errors import ConfigError
from ..seed import PRIORITY_RANGE, Seed
from .common import Env, cli, connection_options, handle_errors, option, say

# -- push ---------------------------------------------------------------------------
@cli.command(short_help="Add seeds to a spider's work queue.")
@connection_options()
@click.option("--file", "seed_file", type=click.File("r", encoding="utf-8"), default=None,
              help="seeds as JSON lines ('-' for stdin); `url` required")
@click.option("--force", is_flag=True, help="fetch them again even if cached (takes them out of the cache)")
# -- priority: the URLs', and the file seeds' that carry no "priority" of their own
@click.option("--priority", type=click.IntRange(*PRIORITY_RANGE), default=None, metavar="N",
              help="priority of the seeds (higher first; default 0); a file seed's own wins")
@option(BY_NAME["recrawl"])
@click.option("--sitemap", "sitemap", default=None, metavar="URL",
              help="push every <loc> of this sitemap, sitemap index (5 levels) or text sitemap, "
                   "gzip or not, fetched through the spider's proxies")
@click.option("--sitemap-filter", "sitemap_filter", default=None, metavar="REGEX",
              help="with --sitemap: only page URLs this regular expression matches (re.search)")
@option(BY_NAME["http_proxy"])
@click.argument("spider")
@click.argument("urls", nargs=-1)
@handle_errors
def push(spider, urls, seed_file, force, priority, sitemap, sitemap_filter, **flags):
    """Add seeds to SPIDER's work queue: URLs as arguments, --file seeds.jsonl, or --sitemap URL.

    Every seed is checked first: one bad line (reported with its number) and
    nothing is pushed.  --priority N gives the URLs, and the file seeds that
    have no "priority" field, priority N.  A sitemap file over 50 MB uncompressed
    or 50,000 URLs is skipped (one line naming it); the others go on.
    """
    from ..ops.seeding import push_seeds, read_seeds

    env = Env(spider, flags, allow_name=True)
    if sitemap_filter is not None and sitemap is None:
        raise ConfigError("--sitemap-filter needs --sitemap URL")
    if sitemap is not None:
        return _push_sitemap(env, sitemap, sitemap_filter, force)
    if not urls and seed_file is None:
        raise ConfigError("give URLs, --file FILE or --sitemap URL")
    seeds = read_seeds(urls, seed_file, priority)
    pushed, known = push_seeds(env.redis, env.name, seeds, force=force,
                               recrawl=env.settings.recrawl)
    say("%s: %d seeds pushed%s" % (env.name, pushed,
                                      ", %d already known skipped (queued, in flight, backlogged, "
                                      "failed or cached; --force fetches them again)" % known
                                      if known else ""))


def _push_sitemap(env, url, pattern, force):
    import re

    from ..ops.sitemaps import push_sitemap
    from ..transport.fetcher import Urllib3Fetcher
    from ..transport import _Probe

    try:
        keep = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise ConfigError("bad --sitemap-filter %r: %s" % (pattern, exc)) from None
    try:
        Seed(url)
    except ValueError as exc:
        raise ConfigError("bad --sitemap URL: %s" % exc) from None
    proxies = None
    if env.settings.http_proxy:
        from ..proxies import ProxyPool

        proxies = ProxyPool.from_source(env.settings.http_proxy, redis=env.redis.work)
    spider = env.spider() if env.spider_cls is not None else _Probe()
    fetcher = Urllib3Fetcher(spider, env.settings, proxies=proxies)
    try:
        report = push_sitemap(env.redis, env.name, fetcher, url, keep=keep, say=say, force=force,
                              recrawl=env.settings.recrawl)
    finally:
        fetcher.close()
    say("%s: %d seeds pushed from %d sitemap files%s%s%s" % (
        env.name, report.pushed, report.files,
        ", %d already cached skipped" % report.cached if report.cached else "",
        ", %d filtered out" % report.filtered if report.filtered else "",
        ", %d files skipped" % report.skipped if report.skipped else ""))


# -- relay --------------------------------------------------------------------------
@cli.command(short_help="Move the backlog to the work queue, once.")
@connection_options()
@option(BY_NAME["max_age"])
@click.option("-r", "--clear", "reset", is_flag=True,
              help="reset every seed's age to 0 and move them all, over-age ones included")
@click.argument("spider")
@handle_errors
def relay(spider, reset, **flags):
    """Move SPIDER's backlog to its work queue once, now.

    Every seed whose age is <= --max-age moves, even one still waiting for its
    retry delay; older seeds stay (parked).  -r moves all of them, age reset to 0.
    """
    from ..crawl.relay import relay_once
    from ..state import SpiderState

    env = Env(spider, flags, allow_name=True)
    moved, stayed = relay_once(SpiderState(env.redis, env.name), env.settings.max_age,
                                   env.settings.relay_delay, clear=reset)
    say("%s: %d seeds moved to the work queue, %d stayed in the backlog%s"
         % (env.name, moved, stayed, " (age over --max-age %d; -r moves them)"
            % env.settings.max_age if stayed and not reset else ""))


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
    from ..ops.dump import QUEUES, dump as dump_seeds

    env = Env(spider, flags, allow_name=True)
    chosen = [q for q, on in zip(QUEUES, (work, backlog, quarantine)) if on] or ["work", "backlog"]
    if as_json and fields:
        raise ConfigError("--json prints whole seeds; leave out -f")
    try:
        dump_seeds(env.redis, env.name, chosen, fields, as_json, out=sys.stdout, limit=num)
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
    from ..ops.clear import clear as clear_parts

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
    removed = clear_parts(env.redis, env.store() if needs_store else None, env.name, parts, everything)
    say("%s: removed %s" % (env.name, ", ".join("%s %d" % kv for kv in removed.items())))


