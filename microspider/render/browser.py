"""One headless Chromium started by chromedriver and driven over DevTools, and how to find them.

Each Browser is one chromedriver process, one Chromium behind it (one proxy, a
fresh temporary profile) and its tabs.  chromedriver only starts the browser and
keeps it on a leash; pages are driven over the browser's own DevTools socket
(``cdp.Connection``), several tabs at once, which chromedriver's one-command-
at-a-time session cannot do.  Both processes are set to
die with their parent (Linux ``PR_SET_PDEATHSIG``), so a worker killed with
``kill -9`` leaves no browser behind; ``kill()`` ends the whole process tree by
PID and removes the profile.

Selenium is imported when a Browser is made, never at module import: the run
process only checks that it can be imported.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from ..errors import ConfigError, FetchError
from .cdp import Connection

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_NAME = "chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,1024",
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
# started by chromedriver in place of the browser: die with chromedriver, then become the browser
LAUNCHER = """#!%(python)s -S
import ctypes, os, sys
ctypes.CDLL(None).prctl(%(option)d, %(signal)d)
if os.getppid() == 1:
    sys.exit(1)
os.execv(%(browser)r, [%(browser)r] + sys.argv[1:])
"""
INSTALL_HINT = "pip install microspider[render]"


def check_selenium():
    """ConfigError naming the extra unless Selenium can be imported."""
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        raise ConfigError("this spider renders pages in a browser and needs Selenium: %s"
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


def find_driver(browser):
    """The chromedriver beside the browser, else on PATH; never downloaded."""
    folder = os.path.dirname(os.path.realpath(browser))
    for candidate in (os.path.join(folder, DRIVER_NAME), shutil.which(DRIVER_NAME)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError("no chromedriver found beside %s or on PATH; install the chromedriver that "
                      "matches the browser (Debian: apt install chromium-driver)" % browser)


def _die_with_parent():
    """preexec_fn of chromedriver: SIGKILL it when the worker that started it dies."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Browser:
    """One Chromium (through one proxy, or none) behind its own chromedriver."""

    def __init__(self, browser, driver, proxy=None, timeout=20.0):
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service

        self.proxy = proxy
        self.pages = 0
        self.dir = tempfile.mkdtemp(prefix="microspider-chromium-")
        self.driver = None
        self.service = Service(executable_path=driver, log_output=subprocess.DEVNULL,
                               popen_kw={"start_new_session": True, "preexec_fn": _die_with_parent})
        self.cdp = None
        self.tabs = []
        try:
            self.driver = webdriver.Chrome(service=self.service,
                                           options=self._options(browser, proxy))
            address = self.driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
            self.cdp = Connection(devtools_socket(address, timeout), timeout)
        except (WebDriverException, OSError, FetchError) as exc:
            self.kill()
            raise FetchError("cannot start %s: %s" % (browser, _first_line(exc))) from None
        except BaseException:
            self.kill()
            raise

    def _options(self, browser, proxy):
        from selenium.webdriver.chrome.options import Options

        options = Options()
        options.binary_location = self._launcher(browser)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument("--user-data-dir=" + os.path.join(self.dir, "profile"))
        if proxy:
            options.add_argument("--proxy-server=" + proxy)
            # Chromium never proxies loopback by itself; the plain fetcher proxies everything
            options.add_argument("--proxy-bypass-list=<-loopback>")
        return options

    def _launcher(self, browser):
        if not sys.platform.startswith("linux"):
            return browser
        path = os.path.join(self.dir, "browser")
        with open(path, "w", encoding="utf-8") as f:
            f.write(LAUNCHER % {"python": sys.executable, "option": PR_SET_PDEATHSIG,
                                "signal": signal.SIGKILL, "browser": browser})
        os.chmod(path, 0o700)
        return path

    def open_tab(self, **options):
        """A new Tab in a browser context of its own (FetchError if the browser is gone)."""
        from .tabs import Tab

        tab = Tab(self, **options)
        self.tabs.append(tab)
        return tab

    def close_tab(self, tab):
        self.tabs.remove(tab)
        tab.close()

    def pids(self):
        """PIDs of chromedriver and every process below it (the browser's)."""
        process = getattr(self.service, "process", None)
        if process is None or process.poll() is not None:
            return []
        return [process.pid] + descendants(process.pid)

    def browser_pids(self):
        """PIDs of the Chromium processes (chromedriver excluded)."""
        return self.pids()[1:]

    def kill(self):
        """End chromedriver and the browser at once, by PID, and remove the profile."""
        pids = self.pids()
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        process = getattr(self.service, "process", None)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()
            self.service.process = None  # Service.__del__ must not stop it again
        if self.cdp is not None:
            self.cdp.close()
        self.tabs = []
        shutil.rmtree(self.dir, ignore_errors=True)


def devtools_socket(address, timeout):
    """The browser-wide DevTools websocket URL of the Chromium listening at ``address``."""
    import urllib.request

    with urllib.request.urlopen("http://%s/json/version" % address, timeout=timeout) as answer:
        return json.loads(answer.read())["webSocketDebuggerUrl"]


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
