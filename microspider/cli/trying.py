"""``try``: a spider's parse on one URL (or one stored failure), printed, nothing written."""
import json
import sys

import click

from ..config import BY_NAME
from ..errors import ConfigError
from .common import Env, cli, connection_options, handle_errors, option, say

FETCH_OPTIONS = ("fetcher", "impersonate", "http_proxy", "timeout", "max_body", "parse_timeout", "browser",
                 "render_engine", "render_fallback")


def fetch_options(f):
    for name in reversed(FETCH_OPTIONS):
        f = option(BY_NAME[name])(f)
    return f


@cli.command("try", short_help="Fetch one URL as SPIDER would and show what parse gives.")
@connection_options()
@fetch_options
@option(BY_NAME["render"])
@click.option("-r", "--retry", "attempts", type=click.IntRange(min=0), default=0, metavar="N",
              help="extra attempts when the fetch fails (a run's --retry is not used) [default: 0]")
@click.option("--failure", "failure_id", default=None, metavar="ID",
              help="parse the response stored with this failure instead (IDs: `microspider failures`)")
@click.option("--json", "as_json", is_flag=True,
              help="one JSON object: status, url, items, seeds [{to, seed}], error")
@click.argument("spider")
@click.argument("url", required=False)
@handle_errors
def try_command(spider, url, attempts, failure_id, as_json, **flags):
    """Fetch URL with SPIDER's own settings, run its parse once and print the status, the final
    URL, each item, each seed with the spider it goes to, and the traceback if parse raised.

    Nothing is written to Redis or the store.  With --failure ID, parse runs on
    that stored failure's response (read from the store; no network).  Exit
    status: 0 parse succeeded, 1 parse raised or the fetch failed, 2 bad input.
    """
    from ..ops import trying

    if (url is None) == (failure_id is None):
        raise ConfigError("give either a URL or --failure ID")
    env = Env(spider, flags)
    if env.settings.render and failure_id is None:
        from ..render import check_render, render_warnings

        check_render(env.settings)   # a missing extra or browser: one line, exit 2
        for warning in render_warnings(env.spider_cls, env.settings):
            say("%s: %s" % (env.name, warning))
    if failure_id is None:
        from ..transport import check_impersonate

        for warning in check_impersonate(env.spider_cls, env.settings):   # as run warns at start
            say("%s: %s" % (env.name, warning))
    if failure_id is not None:
        trial = trying.try_failure(env.spider(), env.settings, env.store_uri, failure_id)
    else:
        trial = trying.try_url(env.spider(), env.settings, url, attempts, _proxies(env))
    _show(trial, as_json)
    sys.exit(0 if trial.ok else 1)


def _proxies(env):
    """The spider's proxy pool, or None; a Redis set is read from the configured Redis only."""
    source = env.settings.http_proxy
    if not source:
        return None
    from ..proxies import ProxyPool

    needs_redis = source.startswith("set:")
    if needs_redis and "redis" not in env.settings.configured:
        raise ConfigError("-p %s reads a set of the run's Redis: give --redis" % source)
    return ProxyPool.from_source(source, redis=env.redis.work if needs_redis else None)


def _show(trial, as_json):
    if as_json:
        click.echo(json.dumps(trial.to_dict(), ensure_ascii=False, sort_keys=True))
        return
    if trial.status is not None:
        click.echo("status %d  %s" % (trial.status, trial.url))
    for item in trial.items:
        click.echo("item  %s" % json.dumps(item, ensure_ascii=False, sort_keys=True))
    for to, seed in trial.seeds:
        click.echo("seed  -> %s  %s" % (to, seed.to_json()))
    if not trial.ok:
        click.echo((trial.traceback or "").rstrip(), err=True)
        say("%s: %s" % (type(trial.error).__name__, str(trial.error).splitlines()[0]
                        if str(trial.error) else ""))
    else:
        say("parse gave %s and %s" % (_count(len(trial.items), "item"), _count(len(trial.seeds), "seed")))


def _count(n, noun):
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")
