"""``run`` (and the hidden ``_worker`` it starts) and ``gen``."""
import os
import sys

import click

from ..errors import ConfigError
from .common import (Env, alert_options, alerter_from, cli, connection_options, handle_errors,
                     run_options, say)

# -- run ----------------------------------------------------------------------------
@cli.command()
@connection_options()
@run_options
@alert_options
@click.argument("spider")
@handle_errors
def run(spider, **flags):
    """Run SPIDER (a file path or dotted module, optionally :ClassName) until its crawl ends."""
    from ..crawl import supervisor

    alerter = alerter_from(flags)
    if flags.get("idle") is not None and flags.get("forever"):
        raise ConfigError("--idle and --forever exclude each other")
    if flags.get("idle") is not None and flags.get("every") is not None:
        raise ConfigError("--idle and --every exclude each other (a periodic run ends by SIGTERM/SIGINT)")
    env = Env(spider, flags)
    path, colon, cls_name = spider.partition(":")
    ref = os.path.abspath(path) + colon + cls_name if os.path.isfile(path) else spider
    env.redis  # connect (or fail) before anything starts
    if env.settings.http_proxy:
        from ..proxies import ProxyPool

        ProxyPool.from_source(env.settings.http_proxy, redis=env.redis.work)  # validate now
    sys.exit(supervisor.run(ref, env.spider_cls, env.settings, env.redis_url, env.store_uri,
                            alerter))


@cli.command("_worker", hidden=True)
@handle_errors
def worker_command():
    """A worker process (started by `run`)."""
    from ..crawl import bootstrap

    job = os.environ.get(bootstrap.JOB_ENV)
    if not job:
        raise click.UsageError("_worker is started by `microspider run`")
    sys.exit(bootstrap.run_worker(job))


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
    from ..ops.gen import gen as generate

    for path in generate(name, ".", start_url):
        say("wrote %s" % path)


