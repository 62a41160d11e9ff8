"""Pages that need a browser: the engines (Chromium, Lightpanda), their pool and their network events.

The fetcher that renders seeds with them is ``microspider.transport.browser``
(``RenderFetcher``); the worker uses it when ``settings.render`` is set
(``render = True`` on the spider, ``render`` in microspider.cfg, or
``--render``).  ``check_render`` runs in the run process before any worker
starts, so a missing extra or browser is one line and exit 2, not a crash
loop.  websocket-client is imported only when used.  ``render.engines``
names the engines and what they share.
"""
from .engines import check_engine

__all__ = ["check_render", "render_warnings"]


def check_render(settings):
    """ConfigError (one line) unless the render extra and the engine (``render_engine``) are there."""
    check_engine(settings)


def render_warnings(spider_cls, settings):
    """Lines to print at start about what the chosen engine cannot do for this spider."""
    from .engines import chromium_available, engine_of

    if engine_of(settings) != "lightpanda":
        return []
    out = []
    if settings.render_fallback and not chromium_available(settings):
        out.append("render_fallback: no Chromium here, so a page Lightpanda fails on counts as a "
                   "failed fetch (install chromium, or give --browser PATH)")
    headers = getattr(spider_cls, "headers", None) or {}
    agents = getattr(spider_cls, "user_agents", None) or ()
    if settings.sessions or settings.impersonate or agents or any(
            k.lower() == "user-agent" for k in headers):
        out.append("Lightpanda sends its own User-Agent and sec-ch-ua (it refuses another "
                   "browser's): rendered pages do not present the spider's or its sessions' "
                   "browser identity; use render_engine = chromium where a site checks it")
    return out
