"""One identity, as every fetcher and the browser present it: User-Agent, platform, client hints.

An :class:`Identity` is the record a WAF compares across requests: the
User-Agent, ``navigator.platform``, the client hints (``sec-ch-ua``,
``sec-ch-ua-mobile``, ``sec-ch-ua-platform``), the Accept-Language and, with
``impersonate``, the curl_cffi profile.  Where it comes from:

- a profile (``impersonate``): the profile's own headers, read from what
  curl_cffi's libcurl sends (``transport.impersonate.profile_identity``), never guessed;
- a User-Agent (``user_agents``, a seed's or the spider's ``User-Agent``):
  ``from_agent`` derives the rest from the string as that browser would send
  it: a Chromium-based UA gets Chrome's own brand list for its major version
  (GREASE brand included) and the platform its OS names; a Firefox or Safari
  UA sends no client hints at all, as those browsers do not;
- the browser's own (rendering without a User-Agent): Chromium's User-Agent
  with ``HeadlessChrome`` made ``Chrome`` (``of_browser``).

The plain fetchers send ``headers()``; the browser takes ``override()``
(``Emulation.setUserAgentOverride`` with ``userAgentMetadata``, so the header,
``navigator.userAgent``, ``navigator.platform`` and ``navigator.userAgentData``
agree) and ``locale``::

    identity = from_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) ... Chrome/150.0.0.0 ...")
    identity.headers()    # sec-ch-ua, sec-ch-ua-mobile, sec-ch-ua-platform, User-Agent, Accept-Language
    identity.platform     # "Win32"
"""
import collections
import functools
import re

__all__ = ["Identity", "from_agent", "from_headers", "of_browser", "brand_list", "DEFAULT_LANGUAGE"]

DEFAULT_LANGUAGE = "en-US,en;q=0.9"
# header names the identity owns: a seed or spider header of these names gives way to it
OWNED = frozenset(["user-agent", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform",
                   "accept-language"])
# Chrome's GREASE brand (components/embedder_support/user_agent_utils.cc), seeded by the major version
GREASE_CHARS = (" ", "(", ":", "-", ".", "/", ")", ";", "=", "?", "_")
GREASE_VERSIONS = ("8", "99", "24")
ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
# (words in the UA, navigator.platform, sec-ch-ua-platform, platformVersion), first match wins
PLATFORMS = ((("Android",), "Linux armv81", "Android", ""),
             (("iPhone",), "iPhone", "iOS", ""),
             (("iPad",), "iPad", "iOS", ""),
             (("Windows",), "Win32", "Windows", "10.0.0"),
             (("Macintosh", "Mac OS X"), "MacIntel", "macOS", "10.15.7"),
             (("CrOS",), "Linux x86_64", "Chrome OS", ""),
             (("Linux", "X11"), "Linux x86_64", "Linux", ""))
BRANDS = (("Edg/", "Microsoft Edge"), ("OPR/", "Opera"), ("Chrome/", "Google Chrome"))

FIELDS = ("agent", "platform", "sec_ch_ua", "mobile", "ch_platform", "language", "profile")


class Identity(collections.namedtuple("Identity", FIELDS)):
    """A session's identity (see the module docstring); ``sec_ch_ua`` None: no client hints."""

    def headers(self):
        """The identity's request headers, in Chrome's order."""
        out = {}
        if self.sec_ch_ua:
            out["sec-ch-ua"] = self.sec_ch_ua
            out["sec-ch-ua-mobile"] = "?1" if self.mobile else "?0"
            out["sec-ch-ua-platform"] = '"%s"' % self.ch_platform
        out["User-Agent"] = self.agent
        out["Accept-Language"] = self.language
        return out

    def brands(self):
        """[{"brand", "version"}] of ``sec-ch-ua``, in its order."""
        return [{"brand": b, "version": v}
                for b, v in re.findall(r'"([^"]*)";\s*v="([^"]*)"', self.sec_ch_ua or "")]

    @property
    def languages(self):
        """The language tags of Accept-Language, in order, without their weights."""
        return [tag for tag in (part.split(";")[0].strip() for part in self.language.split(",")) if tag]

    @property
    def locale(self):
        """The first language ("en-US"), for the browser's Intl locale."""
        return (self.languages or ["en-US"])[0]

    def override(self):
        """The parameters of ``Emulation.setUserAgentOverride`` that present this identity."""
        # Chromium weighs the list itself, as chrome_languages() does for the other fetchers
        params = {"userAgent": self.agent, "acceptLanguage": ",".join(self.languages),
                  "platform": self.platform}
        if self.sec_ch_ua:
            brands = self.brands()
            params["userAgentMetadata"] = {
                "brands": brands,
                "fullVersionList": [dict(b, version=_full(b["version"])) for b in brands],
                "fullVersion": _full(_major(self.agent) or "0"),
                "platform": self.ch_platform, "platformVersion": _platform_version(self),
                "architecture": "" if self.mobile else "x86", "bitness": "" if self.mobile else "64",
                "model": "", "mobile": bool(self.mobile), "wow64": False}
        return params

    def to_dict(self):
        return dict(self._asdict())

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data.get(name) for name in FIELDS})


@functools.lru_cache(maxsize=256)
def from_agent(agent, language=None, profile=None):
    """The identity a browser with User-Agent `agent` presents (derived from the string)."""
    agent = agent.replace("HeadlessChrome/", "Chrome/")
    platform, ch_platform = _platform(agent)
    major = _major(agent) if _is_chromium(agent) else None
    mobile = "Mobile" in agent
    language = language or DEFAULT_LANGUAGE
    return Identity(agent, platform, brand_list(major, _brand(agent)) if major else None, mobile,
                    ch_platform if major else None,
                    chrome_languages(language) if major else language, profile)


def from_headers(headers, profile=None):
    """The identity the request headers `headers` (a browser's, a profile's) present."""
    lowered = {k.lower(): v for k, v in headers.items()}
    agent = lowered.get("user-agent", "")
    derived = from_agent(agent, lowered.get("accept-language") or DEFAULT_LANGUAGE, profile)
    if "sec-ch-ua" not in lowered:
        return derived._replace(sec_ch_ua=None, ch_platform=None)
    return derived._replace(sec_ch_ua=lowered["sec-ch-ua"],
                            mobile=lowered.get("sec-ch-ua-mobile") == "?1",
                            ch_platform=lowered.get("sec-ch-ua-platform", '""').strip('"'))


def of_browser(user_agent, language=None):
    """The identity of a Chromium whose own User-Agent is `user_agent`, without its headless tell."""
    return from_agent(user_agent, language)


def brand_list(major, brand="Google Chrome"):
    """``sec-ch-ua`` as Chrome `major` sends it: a GREASE brand, Chromium and `brand`, Chrome's order."""
    seed = int(major)
    grease = ("Not%sA%sBrand" % (GREASE_CHARS[seed % 11], GREASE_CHARS[(seed + 1) % 11]),
              GREASE_VERSIONS[seed % 3])
    listed = [grease, ("Chromium", major), (brand, major)]
    shuffled = [None] * 3
    for place, item in zip(ORDERS[seed % 6], listed):
        shuffled[place] = item
    return ", ".join('"%s";v="%s"' % item for item in shuffled)


def chrome_languages(language):
    """Accept-Language as Chromium writes it from the same list: weights 0.9, 0.8, ... after the first."""
    tags = [t for t in (part.split(";")[0].strip() for part in language.split(",")) if t]
    return ",".join(tag if not n else "%s;q=%.1f" % (tag, max(0.1, 1 - n / 10.0))
                    for n, tag in enumerate(tags))


def agent_of(headers):
    """The User-Agent among `headers` (any case), or None."""
    return next((v for k, v in headers.items() if k.lower() == "user-agent"), None)


def language_of(headers):
    """The Accept-Language among `headers` (any case; None or {} allowed), or None."""
    return next((v for k, v in (headers or {}).items() if k.lower() == "accept-language"), None)


def without_owned(headers):
    """`headers` without those the identity owns (User-Agent, client hints, Accept-Language)."""
    return {k: v for k, v in headers.items() if k.lower() not in OWNED}


def _is_chromium(agent):
    return "Chrome/" in agent and "Firefox/" not in agent and "CriOS/" not in agent


def _major(agent):
    found = re.search(r"(?:Edg|OPR|Chrome)/(\d+)", agent)
    return found.group(1) if found else None


def _brand(agent):
    return next(brand for word, brand in BRANDS if word in agent or word == "Chrome/")


def _platform(agent):
    for words, platform, ch_platform, _ in PLATFORMS:
        if any(word in agent for word in words):
            return platform, ch_platform
    return "", "Unknown"


def _platform_version(identity):
    if identity.ch_platform == "Android":
        found = re.search(r"Android (\d+(?:\.\d+)*)", identity.agent)
        return found.group(1) if found else ""
    return next((v for _, _, p, v in PLATFORMS if p == identity.ch_platform), "")


def _full(version):
    return version if "." in version else version + ".0.0.0"
