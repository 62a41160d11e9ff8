"""Pages that need a browser: headless Chromium, its pool and its network events.

The fetcher that renders seeds with them is ``microspider.transport.browser``
(``RenderFetcher``); the worker uses it when ``settings.render`` is set
(``render = True`` on the spider, ``render`` in microspider.cfg, or
``--render``).  ``check_render`` runs in the run process before any worker
starts, so a missing extra or browser is one line and exit 2, not a crash
loop.  Selenium is imported only when used.
"""
from .browser import check_selenium, find_browser, find_driver

__all__ = ["check_render"]


def check_render(settings):
    """ConfigError (one line) unless Selenium, a Chromium and its chromedriver are there."""
    check_selenium()
    find_driver(find_browser(settings.browser))
