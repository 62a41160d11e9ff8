"""``failures``, ``parse`` and ``retry``: stored failures listed, and back into the crawl."""
import json

import click

from ..config import BY_NAME
from .common import Env, cli, connection_options, handle_errors, option, say

# -- parse, retry -------------------------------------------------------------------
def _num_option(what):
    return click.option("-n", "--num", type=click.IntRange(min=1), default=None, metavar="N",
                        help="%s at most N stored failures, oldest first [default: all]" % what)


@cli.command("parse", short_help="Re-parse stored failed responses with the current code.")
@connection_options()
@_num_option("re-parse")
@option(BY_NAME["no_cache"])
@click.argument("spider")
@handle_errors
def parse_command(spider, num, **flags):
    """Re-run SPIDER's current parse on its stored failed responses, without fetching.

    A success stores the items, sends the new seeds, caches the seed (unless
    --no-cache), removes the failure record and takes the seed out of the
    backlog; a failure stays stored with its attempts counted.
    """
    from ..ops import failures as replay

    env = Env(spider, flags)
    summary = replay.reparse(env.spider(), env.redis, env.store(), limit=num,
                             no_cache=env.settings.no_cache)
    say(summary.line(env.name))


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
    from ..ops import failures as replay

    env = Env(spider, flags, allow_name=True)
    sent, malformed, unbacklogged = replay.retry(env.redis, env.store(), env.name, limit=num)
    say("%s: %d seeds sent to the work queue (%d taken out of the backlog)%s"
         % (env.name, sent, unbacklogged,
            ", %d failure records with a malformed seed left alone" % malformed if malformed else ""))


@cli.command(short_help="List stored failures with their IDs (for `try --failure ID`).")
@connection_options()
@_num_option("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
@click.argument("spider")
@handle_errors
def failures(spider, num, as_json, **flags):
    """List SPIDER's stored failures, oldest first: ID, error, status, attempts, URL.

    Give an ID to `microspider try SPIDER --failure ID` to run the current
    parse on that stored response.
    """
    from ..ops import failures as stored

    env = Env(spider, flags, allow_name=True)
    rows = list(stored.listing(env.store(), limit=num))
    if not rows:   # an empty stdout alone leaves a new user wondering whether it worked
        say("%s: no stored failures" % env.name)
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True) if as_json else
                   "%s  %s  %s  x%d  %s" % (row["_id"], row["error"], row["status"] or "-",
                                            row["attempts"] or 0, row["url"]))
