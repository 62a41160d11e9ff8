"""One Lightpanda process (``lightpanda serve``) driven over DevTools, and how to find it.

Lightpanda is a headless browser made for crawling (V8, no layout, no paint),
shipped as the ``lightpanda`` wheel with its binary inside (the
``microspider[lightpanda]`` extra).  It speaks the same DevTools protocol as
Chromium, with three differences this module hides from the tab above it:

- one browser context per DevTools connection: each tab opens its own
  websocket (``connect``), and the process is started with
  ``--cdp-max-connections`` equal to the tabs it may hold;
- its websocket refuses a handshake that carries an ``Origin`` header (403):
  ``cdp.Connection`` never sends one;
- it will not present another browser's User-Agent (a value with
  ``Mozilla`` in it is refused): it sends its own, ``Lightpanda/1.0``, and its
  own ``sec-ch-ua``; a session's Accept-Language and cookies still apply.

The process is started by the worker with ``PR_SET_PDEATHSIG`` set between
fork and exec, as Chromium is, so a worker killed with ``kill -9`` leaves no
Lightpanda behind; telemetry is always off (``LIGHTPANDA_DISABLE_TELEMETRY``).
Proxy, certificate checking and whether images load are per process, fixed
at start, as for Chromium.
"""
import os
import signal
import socket
import subprocess
import sys
import time

from ..errors import ConfigError, FetchError
from .browser import START_TIMEOUT, _die_with, _first_line
from .cdp import Connection
from .engines import EngineProcess

INSTALL_HINT = "pip install microspider[lightpanda]"
ENVIRONMENT = {"LIGHTPANDA_DISABLE_TELEMETRY": "true"}
START_ATTEMPTS = 3        # a port taken between reserving it and the browser's bind: try another
PORT_POLL = 0.01          # seconds between looks for the listening port while it starts
HOST = "127.0.0.1"
HTTP_LIMIT = 255          # the largest --http-max-host-open / --http-max-concurrent it takes


def find_lightpanda():
    """The lightpanda binary of the installed wheel (or $LIGHTPANDA_BIN); ConfigError naming the extra."""
    try:
        from lightpanda.client import find_binary
    except ImportError:
        raise ConfigError("render_engine = lightpanda needs the Lightpanda browser: %s"
                          % INSTALL_HINT) from None
    try:
        return str(find_binary())
    except Exception as exc:   # the wheel is there but its binary is not (a broken install)
        raise ConfigError("%s; reinstall it: %s" % (_first_line(exc), INSTALL_HINT)) from None


class Lightpanda(EngineProcess):
    """One ``lightpanda serve`` process (through one proxy, or none), started by this process, and its tabs."""

    name = "lightpanda"
    windows = False        # nothing is painted: no window to minimize
    per_tab_socket = True  # one browser context per DevTools connection

    def __init__(self, binary, proxy=None, timeout=20.0, tabs=16, verify=True, media=False):
        self.proxy = proxy
        self.pages = 0
        self.timeout = timeout
        self.dir = None        # nothing on disk (Chromium has its profile): nothing left by a kill -9
        self.process = None
        self.url = None
        self.tabs = []
        self.version = {}
        last = None
        for _ in range(START_ATTEMPTS):
            try:
                self._start(binary, proxy, tabs, verify, media)
                return
            except FetchError as exc:   # exited at start (its port taken?) or never listened
                last = exc
                self._stop()
            except BaseException:
                self.kill()
                raise
        self.kill()
        raise FetchError("cannot start %s: %s" % (binary, last))

    def _start(self, binary, proxy, tabs, verify, media):
        port = _free_port()
        command = [binary, "serve", "--host", HOST, "--port", str(port),
                   "--cdp-max-connections", str(tabs + 1), "--log-level", "fatal",
                   # pages of one site side by side: as many connections as contexts may want
                   # (Lightpanda refuses values over 255: "range overflow", exit 1)
                   "--http-max-host-open", str(min(HTTP_LIMIT, max(6, 2 * tabs))),
                   "--http-max-concurrent", str(min(HTTP_LIMIT, max(40, 4 * tabs)))]
        if proxy:
            command += ["--http-proxy", proxy]
        if not verify:   # the spider's verify = False: any certificate, as for every fetcher
            command.append("--insecure-disable-tls-host-verification")
        if media:
            command += ["--load-resources", "image"]
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, cwd="/",
                env=dict(os.environ, **ENVIRONMENT),
                preexec_fn=_die_with(os.getpid()) if sys.platform.startswith("linux") else None)
        except OSError as exc:
            raise FetchError(_first_line(exc)) from None
        start = max(self.timeout, START_TIMEOUT)   # a busy machine starts slowly, as for Chromium
        self._wait_listening(port, time.monotonic() + start)
        self.url = "ws://%s:%d/" % (HOST, port)
        probe = Connection(self.url, start)
        try:
            self.version = probe.send("Browser.getVersion")
        finally:
            probe.close()

    def _wait_listening(self, port, deadline):
        while True:
            if self.process.poll() is not None:
                raise FetchError("lightpanda exited at start (status %s)" % self.process.returncode)
            try:
                socket.create_connection((HOST, port), timeout=0.25).close()
                return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise FetchError("lightpanda did not listen in time")
            time.sleep(PORT_POLL)


    def connect(self):
        """A DevTools connection of its own for a new tab (one browser context per connection)."""
        if self.url is None or self.process is None or self.process.poll() is not None:
            from .cdp import BrowserGone

            raise BrowserGone("lightpanda is not running")
        return Connection(self.url, self.timeout)

    def disconnect(self, cdp):
        cdp.close()

    def identity_commands(self, identity, previous=None):
        """What presents `identity` here: its User-Agent (kept only if not another browser's) and language."""
        return [("Network.setUserAgentOverride", {"userAgent": identity.agent,
                                                  "acceptLanguage": ",".join(identity.languages)})]


    def pids(self):
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid]

    browser_pids = pids

    def _stop(self):
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
        self.process = None

    def kill(self):
        """End the process at once, by PID, and close every tab's connection."""
        self._stop()
        for tab in self.tabs:
            tab.cdp.close()
        self.tabs = []


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
