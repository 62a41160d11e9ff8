"""Every way a page is fetched, behind one interface.

A transport is a ``Fetcher`` subclass (``transport.fetcher``) that implements one
exchange, ``_request(seed, proxy)``; the retries through other proxies, bans,
rate limits and proxy health around it are the base class's.  Each builds
the ``Response`` parse gets with ``transport.response.make_response``.

=============  ==========================  ====================================
name           class (module)              needs
=============  ==========================  ====================================
``curl``       ``CurlFetcher``             pycurl (libcurl on the gevent loop)
               (``curl_fetcher``)
``urllib3``    ``Urllib3Fetcher``          urllib3
               (``fetcher``)
``browser``    ``RenderFetcher``           the ``render`` extra and a Chromium
               (``browser``)
=============  ==========================  ====================================

``make_fetcher`` picks one from the settings (``render`` means the browser);
each module is imported only when chosen, so a missing extra is one line.
Nothing here imports the crawl loop (``microspider.crawl``) or the commands.
"""
from ..errors import ConfigError

FETCHERS = ("curl", "urllib3")
__all__ = ["FETCHERS", "fetcher_class", "make_fetcher", "probe_fetcher"]


def fetcher_class(name):
    """The Fetcher subclass of a transport name (``--fetcher``, or "browser")."""
    if name == "urllib3":
        from .fetcher import Urllib3Fetcher

        return Urllib3Fetcher
    if name == "curl":
        try:
            from .curl_fetcher import CurlFetcher
        except ImportError as exc:
            raise ConfigError("--fetcher curl needs pycurl (%s); pip install pycurl, "
                              "or run with --fetcher urllib3" % exc) from None
        return CurlFetcher
    if name == "browser":
        from .browser import RenderFetcher

        return RenderFetcher
    raise ConfigError("unknown fetcher %r; use one of %s" % (name, ", ".join(FETCHERS)))


def transport_name(settings):
    """The transport the settings ask for: the browser when rendering, else ``--fetcher``."""
    return "browser" if getattr(settings, "render", False) else settings.fetcher


def make_fetcher(spider, settings, **kwargs):
    """The fetcher the settings name, built with the Fetcher arguments in `kwargs`."""
    return fetcher_class(transport_name(settings))(spider, settings, **kwargs)


def probe_fetcher(name="curl", timeout=10.0):
    """A fetcher for one-off checks (``proxy check``): no retries, no headers of a spider."""
    from ..config import Settings

    return fetcher_class(name)(_Probe(), Settings(retry=0, timeout=timeout, pool=1, fetcher=name))


class _Probe:
    """The spider a check fetches for: no headers of its own, certificates verified."""

    name = "proxy-check"
    headers = None
    user_agents = ()
    verify = True
    handle_status = ()

    def is_banned(self, response):
        return False
