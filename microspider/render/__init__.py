"""Pages that need a browser: headless Chromium, its pool and its network events.

The fetcher that renders seeds with them is ``microspider.transport.browser``
(``RenderFetcher``); the worker uses it when ``settings.render`` is set
(``render = True`` on the spider, ``render`` in microspider.cfg, or
``--render``).  ``check_render`` runs in the run process before any worker
starts, so a missing extra or browser is one line and exit 2, not a crash
loop.  websocket-client is imported only when used.
"""
from .browser import check_extra, find_browser

__all__ = ["check_render"]


def check_render(settings):
    """ConfigError (one line) unless the render extra and a Chromium are there."""
    check_extra()
    find_browser(settings.browser)
