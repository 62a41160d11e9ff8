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
``impersonate`` ``ImpersonateFetcher``     the ``impersonate`` extra (curl_cffi)
               (``impersonate``)
``browser``    ``RenderFetcher``           the ``render`` extra and a Chromium
               (``browser``)
=============  ==========================  ====================================

``make_fetcher`` picks one from the settings (``render`` means the browser,
an ``impersonate`` profile the impersonating transport);
each module is imported only when chosen, so a missing extra is one line.
Nothing here imports the crawl loop (``microspider.crawl``) or the commands.
"""
from ..errors import ConfigError

FETCHERS = ("curl", "urllib3", "impersonate")
IMPERSONATE_EXTRA = "pip install microspider[impersonate]"
__all__ = ["FETCHERS", "check_impersonate", "fetcher_class", "make_fetcher", "probe_fetcher"]


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
    if name == "impersonate":
        try:
            from .impersonate import ImpersonateFetcher
        except ImportError as exc:
            raise ConfigError("impersonating a browser needs curl_cffi (%s): %s"
                              % (exc, IMPERSONATE_EXTRA)) from None
        return ImpersonateFetcher
    if name == "browser":
        from .browser import RenderFetcher

        return RenderFetcher
    raise ConfigError("unknown fetcher %r; use one of %s" % (name, ", ".join(FETCHERS)))


def transport_name(settings):
    """The transport the settings ask for: the browser when rendering, an impersonation, ``--fetcher``."""
    if getattr(settings, "render", False):
        return "browser"
    return "impersonate" if getattr(settings, "impersonate", None) else settings.fetcher


def make_fetcher(spider, settings, **kwargs):
    """The fetcher the settings name, built with the Fetcher arguments in `kwargs`."""
    return fetcher_class(transport_name(settings))(spider, settings, **kwargs)


def check_impersonate(spider, settings):
    """Before a run: ConfigError (one line) unless its impersonation can work; warnings to print.

    A User-Agent of the spider (``user_agents``, ``headers``) from another
    browser family than the profile is a warning: the mismatch is a fingerprint.
    """
    if transport_name(settings) != "impersonate":
        return []
    fetcher_class("impersonate")
    from .impersonate import agent_mismatches, check_profile, profile_of

    profile = profile_of(spider, settings)
    check_profile(profile)
    return agent_mismatches(spider, profile)


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
