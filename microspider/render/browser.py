"""One headless Chromium started directly and driven over DevTools, and how to find it.

Each Browser is one Chromium process tree (one proxy, a fresh temporary
profile) and its tabs.  The worker starts the browser itself with
``--remote-debugging-port=0``: Chromium picks a free loopback port and writes
it, with the browser's DevTools path, to ``DevToolsActivePort`` in the
profile; pages are then driven over that one socket (``cdp.Connection``),
several tabs at once.  No driver process sits in between, and nothing marks
the browser as automated (``navigator.webdriver`` stays false, see FLAGS).
The browser is set to die with the worker that started it (Linux
``PR_SET_PDEATHSIG``), so a worker killed with ``kill -9`` leaves no browser
behind; ``kill()`` ends the whole process tree by PID and removes the profile.

websocket-client (the ``render`` extra) is imported when a Browser connects,
never at module import: the run process only checks that it can be imported.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ..errors import ConfigError, FetchError
from .cdp import Connection
from .engines import EngineProcess

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,1024", "--remote-debugging-port=0",
         # headless Chromium sets navigator.webdriver = true by itself; a crawler's pages must not
         "--disable-blink-features=AutomationControlled",
         # pages run in minimized windows (render.tabs): their timers and scripts run at full speed
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows",
         # no spare renderer: Chromium keeps one started for the browser context of the last
         # navigation, and with a context per tab the next page (another context) threw it away,
         # a process start per page; the limit is soft, contexts and sites still get their own
         "--renderer-process-limit=1",
         # a crawler never goes back: no back/forward cache, no new document host or browsing
         # instance per navigation (measured: about a quarter less browser CPU per page)
         "--disable-features=BackForwardCache,RenderDocument,ProactivelySwapBrowsingInstance,"
         "IntensiveWakeUpThrottling")
PR_SET_PDEATHSIG = 1
PORT_FILE = "DevToolsActivePort"
PORT_POLL = 0.02        # seconds between looks for the port file while the browser starts
# seconds a browser may take to start (--timeout if longer): a page's --timeout can be 1 s, and a
# busy machine takes longer than that to start Chromium (chromedriver waited far longer)
START_TIMEOUT = 30.0
INSTALL_HINT = "pip install microspider[render]"


def check_extra():
    """ConfigError naming the extra unless websocket-client (the DevTools socket) can be imported."""
    try:
        import websocket  # noqa: F401
    except ImportError:
        raise ConfigError("this spider renders pages in a browser and needs websocket-client: %s"
                          % INSTALL_HINT) from None


def find_browser(path=None):
    """The Chromium to drive: ``path`` (from --browser) or the first one found on PATH."""
    if path:
        found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
        if not found or os.path.isdir(found):
            raise ConfigError("browser not found or not executable: %s (give a Chromium with "
                              "--browser PATH)" % path)
        return os.path.abspath(found)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("no Chromium found on PATH (looked for %s); install chromium or give one with "
                      "--browser PATH" % ", ".join(BROWSER_NAMES))


def _die_with(parent):
    """preexec_fn of the browser: SIGKILL it when the worker `parent` dies (even before this ran).

    prctl is looked up here, before the fork: the child of a process with threads
    (the DevTools readers) must not load libraries between fork and exec.
    """
    prctl = ctypes.CDLL(None).prctl

    def arm():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:   # the worker died between fork and prctl: nobody to serve
            os._exit(1)
    return arm


class Browser(EngineProcess):
    """One Chromium (through one proxy, or none), started by this process, and its tabs."""

    name = "chromium"
    windows = True   # a tab's window can be minimized (hidden: nothing painted)

    def __init__(self, browser, proxy=None, timeout=20.0):
        self.proxy = proxy
        self.pages = 0
        self.dir = tempfile.mkdtemp(prefix="microspider-chromium-")
        self.process = None
        self.cdp = None
        self.tabs = []
        self.version = {}   # Browser.getVersion: product, userAgent (the browser's own)
        try:
            self.process = subprocess.Popen(
                self._command(browser, proxy), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                preexec_fn=_die_with(os.getpid()) if sys.platform.startswith("linux") else None)
            start = max(timeout, START_TIMEOUT)
            self.cdp = Connection(self._devtools_url(time.monotonic() + start), start)
            self.version = self.cdp.send("Browser.getVersion")
            self.cdp.timeout = timeout   # started: from now on each command has --timeout
        except (OSError, FetchError) as exc:
            self.kill()
            raise FetchError("cannot start %s: %s" % (browser, _first_line(exc))) from None
        except BaseException:
            self.kill()
            raise

    def _command(self, browser, proxy):
        command = [browser, *FLAGS, "--user-data-dir=" + os.path.join(self.dir, "profile")]
        if proxy:
            command.append("--proxy-server=" + proxy)
            # Chromium never proxies loopback by itself; the plain fetcher proxies everything
            command.append("--proxy-bypass-list=<-loopback>")
        return command + ["about:blank"]

    def _devtools_url(self, deadline):
        """The browser-wide DevTools websocket, once Chromium wrote its port file; FetchError if not."""
        path = os.path.join(self.dir, "profile", PORT_FILE)
        while True:
            try:
                with open(path, encoding="ascii") as f:
                    lines = f.read().split()
                if len(lines) >= 2:   # written in full (the port, then the path)
                    return "ws://127.0.0.1:%s%s" % (lines[0], lines[1])
            except OSError:
                pass
            if self.process.poll() is not None:
                raise FetchError("the browser exited at start (status %s)" % self.process.returncode)
            if time.monotonic() >= deadline:
                raise FetchError("the browser wrote no DevTools port within %.0f s" % START_TIMEOUT)
            time.sleep(PORT_POLL)


    def connect(self):
        """The DevTools connection of a new tab: the browser's one socket, shared by every tab."""
        return self.cdp

    def disconnect(self, cdp):
        """A tab is done with its connection (the shared socket stays open)."""

    def identity_commands(self, identity, previous=None):
        """The DevTools commands that present `identity` (microspider.identity) in a tab.

        ``Emulation.setUserAgentOverride`` with the client hints, so the User-Agent and
        ``sec-ch-ua*`` headers, ``navigator.userAgent``, ``navigator.platform`` and
        ``navigator.userAgentData`` all say the same; the locale when it changed.
        """
        commands = [("Emulation.setUserAgentOverride", identity.override())]
        if previous is None or identity.locale != previous.locale:
            commands += [("Emulation.setLocaleOverride", {}),   # one override at a time
                         ("Emulation.setLocaleOverride", {"locale": identity.locale})]
        return commands


    def pids(self):
        """PIDs of the browser and every process below it."""
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid] + descendants(self.process.pid)

    browser_pids = pids

    def kill(self):
        """End the browser's whole process tree at once, by PID, and remove the profile."""
        for pid in reversed(self.pids()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
        if self.cdp is not None:
            self.cdp.close()
        self.tabs = []
        shutil.rmtree(self.dir, ignore_errors=True)


def descendants(pid):
    """PIDs below ``pid`` in the process tree, read from /proc (parents before children)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    parents[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, level = [], [pid]
    while level:
        level = [child for child, parent in parents.items() if parent in level]
        found.extend(level)
    return found


def _first_line(exc):
    text = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
