"""``microspider proxy``: manage a Redis-set proxy pool and check any proxy source."""
import json
import time

import click

from .common import Env, cli, connection_options, handle_errors, say

CHECK_URL = "http://127.0.0.1/"


@cli.group(short_help="Manage a Redis-set proxy pool; check proxies.")
def proxy():
    """Manage the proxies of a Redis set (the source `-p set:KEY` reads) and check proxy sources."""


def _set_options(f):
    f = click.argument("key")(f)
    return connection_options()(f)


@proxy.command("add")
@_set_options
@click.argument("urls", nargs=-1)
@click.option("--file", "url_file", type=click.File("r"), help="one proxy URL per line ('-': stdin)")
@handle_errors
def add(key, urls, url_file, **flags):
    """Add proxy URLs to the Redis set KEY (every URL is checked first)."""
    from ..proxies import add_proxies

    urls = list(urls) + [l.strip() for l in (url_file or ()) if l.strip() and not l.startswith("#")]
    if not urls:
        raise click.UsageError("give proxy URLs or --file FILE")
    added = add_proxies(Env(None, flags).redis.work, key, urls)
    say("%s: %d proxies added (%d already there)" % (key, added, len(set(urls)) - added))


@proxy.command("remove")
@_set_options
@click.argument("urls", nargs=-1, required=True)
@handle_errors
def remove(key, urls, **flags):
    """Remove proxy URLs (and their stats) from the Redis set KEY."""
    from ..proxies import remove_proxies

    say("%s: %d proxies removed" % (key, remove_proxies(Env(None, flags).redis.work, key, urls)))


@proxy.command("list")
@_set_options
@click.option("--json", "as_json", is_flag=True, help="JSON lines")
@handle_errors
def list_command(key, as_json, **flags):
    """The proxies of the Redis set KEY with score, successes, failures, benched-until."""
    from ..proxies import list_proxies

    rows = list_proxies(Env(None, flags).redis.work, key)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    click.echo("%-40s %5s %7s %7s %s" % ("proxy", "score", "ok", "fail", "benched until"))
    for row in rows:
        until = row["benched_until"]
        benched = time.strftime("%H:%M:%S", time.localtime(until)) if until > time.time() else "-"
        click.echo("%-40s %5s %7d %7d %s" % (row["proxy"], "-" if row["score"] is None else row["score"],
                                             row["ok"], row["fail"], benched))


@proxy.command("check")
@connection_options()
@click.argument("source")
@click.option("--url", default=CHECK_URL, show_default=True, help="the URL to fetch through each proxy")
@click.option("--timeout", default=10.0, show_default=True, type=float, help="seconds per proxy")
@click.option("--concurrency", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--fetcher", type=click.Choice(["curl", "urllib3", "impersonate"]), default="curl",
              show_default=True,
              help="the crawl's HTTP client to check with")
@handle_errors
def check(source, url, timeout, concurrency, fetcher, **flags):
    """Fetch --url through every proxy of SOURCE (URL, file, set:KEY or redis://...#KEY) at once."""
    from ..proxies import ProxyPool, check_proxies
    from ..transport import probe_fetcher

    redis = Env(None, flags).redis.work if source.startswith("set:") else None
    pool = ProxyPool.from_source(source, redis=redis)
    rows = check_proxies(pool.proxies, url, lambda: probe_fetcher(fetcher, timeout), concurrency)
    click.echo("%-40s %-4s %9s %s" % ("proxy", "ok", "latency", "error"))
    for row in rows:
        latency = "-" if row["latency"] is None else "%.3fs" % row["latency"]
        click.echo("%-40s %-4s %9s %s" % (row["proxy"], "yes" if row["ok"] else "no", latency,
                                          row["error"] or ""))
    good = sum(r["ok"] for r in rows)
    say("%d of %d proxies answered %s" % (good, len(rows), url))
