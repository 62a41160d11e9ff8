"""The render engines behind one interface: Chromium (the default) and Lightpanda.

An engine is a browser process the worker starts and drives over DevTools.
Everything a spider relies on lives above it, in ``render.tabs``, ``render.wait``,
``render.pool`` and ``transport.browser``: the network-quiet wait, ``render_wait``,
media blocking, a clean cookie jar per page, the session's identity, and what
happens when the engine dies or hangs.  An engine object only::

    engine = launch(proxy)           # start: Browser (Chromium) or Lightpanda
    engine.connect()                 # the DevTools connection of a new context (tab)
    engine.disconnect(cdp)           # ... given back when the tab closes
    engine.identity_commands(identity, previous)   # how it is told who to be
    engine.open_tab(**options) / close_tab(tab)    # a page target in its own context
    engine.pids(); engine.kill()     # its processes; end them all by PID
    engine.name, engine.proxy, engine.windows, engine.user_agent

Pages in flight per process are sized per engine (``render_pages`` and
``render_tabs`` left unset take the engine's figures below): a Chromium page
costs tens of MB and 60-100 ms of CPU, a Lightpanda page a fraction of both,
and since every page waits 0.5 s of network quiet, filling two cores with
Lightpanda takes many pages at once, spread over several processes.
"""
import functools

from ..errors import ConfigError

ENGINES = ("chromium", "lightpanda")
DEFAULT_ENGINE = "chromium"
# (pages in flight per worker process, tabs (browser contexts) per browser process)
SIZES = {"chromium": (16, 16), "lightpanda": (64, 16)}

__all__ = ["ENGINES", "engine_of", "pages_of", "tabs_of", "check_engine", "launcher",
           "chromium_available"]


class EngineProcess:
    """What both engines share: their tabs, and the User-Agent the engine reported at start."""

    tabs = ()        # the Tabs open now (a list per instance)
    version = {}     # Browser.getVersion: product, userAgent (the engine's own)

    @property
    def user_agent(self):
        """The engine's own User-Agent (Chromium's says ``HeadlessChrome`` when headless)."""
        return self.version.get("userAgent", "")

    def open_tab(self, **options):
        """A new Tab in a browser context of its own (FetchError if the engine is gone)."""
        from .tabs import Tab

        tab = Tab(self, **options)
        self.tabs.append(tab)
        return tab

    def close_tab(self, tab):
        self.tabs.remove(tab)
        tab.close()


def engine_of(settings):
    return getattr(settings, "render_engine", None) or DEFAULT_ENGINE


def pages_of(settings, engine=None):
    """Pages rendered at once per process: ``render_pages``, else the engine's own figure."""
    return getattr(settings, "render_pages", None) or SIZES[engine or engine_of(settings)][0]


def tabs_of(settings, engine=None):
    """Tabs (contexts) per browser process: ``render_tabs``, else the engine's own figure."""
    return getattr(settings, "render_tabs", None) or SIZES[engine or engine_of(settings)][1]


def check_engine(settings, engine=None):
    """ConfigError (one line) unless `engine` (default: the settings') can start here."""
    from .browser import check_extra, find_browser

    check_extra()
    engine = engine or engine_of(settings)
    if engine == "lightpanda":
        from .lightpanda import find_lightpanda

        find_lightpanda()
    else:
        find_browser(settings.browser)


def chromium_available(settings):
    """True when Chromium could render a page here (the fallback of another engine)."""
    try:
        check_engine(settings, "chromium")
    except ConfigError:
        return False
    return True


def launcher(settings, engine=None, verify=True, media=False):
    """``launch(proxy)`` -> a started engine of the kind `engine` (default: the settings')."""
    engine = engine or engine_of(settings)
    if engine == "lightpanda":
        from .lightpanda import Lightpanda, find_lightpanda

        return functools.partial(Lightpanda, find_lightpanda(), timeout=settings.timeout,
                                 tabs=tabs_of(settings, engine), verify=verify, media=media)
    from .browser import Browser, find_browser

    return functools.partial(Browser, find_browser(settings.browser), timeout=settings.timeout)
