"""``microspider web``: serve the dashboard with gevent's WSGI server until SIGTERM/SIGINT.

One process, one gevent loop: the server, and (with webhooks) one greenlet
that looks at every spider for alerts.  The caller (the ``web`` command, run
through ``python -m microspider``) has monkey-patched already.
"""
import ipaddress
import logging
import secrets
import signal
import sys

import gevent
import gevent.event
from gevent.pywsgi import WSGIServer

from ..errors import ConfigError
from . import data
from .app import Dashboard

log = logging.getLogger("microspider")
ALERT_EVERY = 5.0


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host, token):
    """ConfigError unless the address is loopback or a token was given."""
    if not is_loopback(host) and not token:
        raise ConfigError("--host %s is reachable from other machines: give --token (a long random "
                          "secret) too, or bind 127.0.0.1" % host)


def address(host, port):
    shown = "[%s]" % host if ":" in host and not host.startswith("[") else host
    return "http://%s:%d/" % (shown, port)


def watch_alerts(alerter, redis, every=ALERT_EVERY, sleep=gevent.sleep):
    """Look at every spider for alerts, for ever (a greenlet)."""
    while True:
        try:
            for name in data.spiders(redis):
                alerter.check(redis, name)
        except Exception as exc:  # Redis down: said, and tried again
            log.warning("alerts: cannot read the spiders: %s", str(exc).splitlines()[0])
        sleep(every)


def serve(redis, open_store, host, port, token=None, alerter=None, say=print):
    """Serve until SIGTERM/SIGINT; returns 0."""
    check_binding(host, token)
    shown_token = token or secrets.token_urlsafe(24)
    app = Dashboard(redis, open_store, shown_token, loopback=is_loopback(host))
    server = WSGIServer((host.strip("[]"), port), app, log=None)
    try:
        server.start()
    except OSError as exc:
        raise ConfigError("cannot listen on %s port %d: %s" % (host, port, exc.strerror or exc)) from None
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    say("dashboard at %s" % address(host, server.server_port))
    if not token:
        say("token for actions (retry, relay, unpark): %s" % shown_token)
    watcher = gevent.spawn(watch_alerts, alerter, redis) if alerter else None
    sys.stderr.flush()
    stop.wait()
    if watcher:
        watcher.kill()
    server.stop(timeout=2)
    app.close()
    return 0
