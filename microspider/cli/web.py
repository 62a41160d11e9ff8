"""``web``: the dashboard, /api/stat and /metrics."""
import sys

import click

from .common import Env, alert_options, alerter_from, cli, connection_options, handle_errors, say


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
    from ..web import server

    alerter = alerter_from(flags)
    server.check_binding(host, token)
    env = Env(None, flags)
    sys.exit(server.serve(env.redis, env.store, host, port, token, alerter, say=say))
