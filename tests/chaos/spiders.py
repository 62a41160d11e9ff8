"""Lean equivalents of the three Ctrip example spiders, for the chaos suite.

Same chain and the same rejections as ``examples/ctrip`` (city list -> hotel
list pages with paging -> hotel pages -> one item each), but parsed with
regular expressions instead of BeautifulSoup, so a trial spends its time on
the engine rather than on HTML parsing.  The site's base URL comes from the
environment variable ``CHAOS_SITE``.
"""
import html
import os
import re
from urllib.parse import urljoin

from microspider import Seed, Spider

SITE = os.environ.get("CHAOS_SITE", "http://127.0.0.1:8765/")
CAPTCHA = "访问过于频繁"
CITY = re.compile(r'<a class="city" href="([^"]+)">([^<]+)</a>')
HOTEL = re.compile(r'<h2 class="hotel_name"><a href="([^"]+)"')
NEXT = re.compile(r'<a class="next" href="([^"]+)"')
TITLE = re.compile(r'<h1 class="hotel-title">([^<]*)<')
BASIC = re.compile(r'<p class="basic-info">([^<]*)</p>')
OPENED = re.compile(r"(\d{4})年开业")
RENOVATED = re.compile(r"(\d{4})年装修")
HOTEL_ID = re.compile(r"/hotel/(\d+)\.html")
CRUMB = re.compile(r'<a class="crumb-city"[^>]*>([^<]*)酒店</a>')


class Rejected(ValueError):
    """Not the page we asked for (captcha, broken page): the framework retries it later."""


def _text(response):
    text = response.text
    if CAPTCHA in text:
        raise Rejected("captcha page")
    return text


class ChaosCity(Spider):
    name = "chaos_city"
    start_urls = [SITE]

    def parse(self, response, seed):
        links = CITY.findall(_text(response))
        if not links:
            raise Rejected("no city links")
        for href, city in links:
            self.send(Seed(urljoin(response.url, href), meta={"city": city}), to="chaos_hotel")
        return ()


class ChaosHotel(Spider):
    name = "chaos_hotel"
    upstream = ["chaos_city"]

    def parse(self, response, seed):
        text = _text(response)
        if 'class="hotel_list"' not in text:
            raise Rejected("no hotel list")
        for href in HOTEL.findall(text):
            self.send(Seed(urljoin(response.url, href), meta=dict(seed.meta)), to="chaos_info")
        nxt = NEXT.search(text)
        if nxt:
            yield Seed(urljoin(response.url, nxt.group(1)), meta=dict(seed.meta))


# hotel id -> what its page makes parse do: "exit" (os._exit), "segv" (a segfault), "spin" (never
# yields); from CHAOS_POISON_HOTELS="id:kind,..."
POISONED = dict(p.split(":", 1) for p in os.environ.get("CHAOS_POISON_HOTELS", "").split(",") if p)


def _poison(kind):
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        import ctypes

        ctypes.string_at(0)
    while True:
        pass


class ChaosInfo(Spider):
    name = "chaos_info"
    upstream = ["chaos_hotel"]

    def parse(self, response, seed):
        text = _text(response)
        title, basic = TITLE.search(text), BASIC.search(text)
        hotel = HOTEL_ID.search(response.url)
        if hotel and hotel.group(1) in POISONED:
            _poison(POISONED[hotel.group(1)])
        if not (title and basic and hotel):
            raise Rejected("no hotel information")
        opened, renovated = OPENED.search(basic.group(1)), RENOVATED.search(basic.group(1))
        if opened is None:
            raise Rejected("no opening year")
        crumb = CRUMB.search(text)   # a hotel reached without meta (e.g. pushed) names its city here
        city = seed.meta.get("city") or (crumb.group(1).strip() if crumb else None)
        yield {"_id": hotel.group(1), "name": html.unescape(title.group(1).strip()), "city": city,
               "opened": int(opened.group(1)),
               "renovated": int(renovated.group(1)) if renovated else None}


# -- the raw faulty site (tests/chaos/sites.py NetFaultSite) -----------------------------
NET = os.environ.get("CHAOS_NET", "http://127.0.0.1:8766/")
LINK = re.compile(r'href="([^"]+)"')
MARK = re.compile(r'<b id="mark">page-(\d+)</b>')
H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


class ChaosNet(Spider):
    name = "chaos_net"
    start_urls = [NET + "index"]

    def parse(self, response, seed):
        text = response.text
        if seed.url.endswith("/index"):
            for href in LINK.findall(text):
                yield Seed(urljoin(response.url, href))
            return
        mark = MARK.search(text)
        if mark is None:
            raise Rejected("no mark in %d characters" % len(text))
        h1 = H1.search(text)
        yield {"_id": mark.group(1), "h1": h1.group(1) if h1 else None}


# -- parse that yields garbage (a plain tests.servers.Site) -----------------------------------
PLAIN = os.environ.get("CHAOS_PLAIN", "http://127.0.0.1:8767/")
# What page /g/<i> makes parse do, by i % len(BEHAVIOURS); "good" pages also yield a child /c/<i>.
GARBAGE = ("good", "int", "none", "str", "list", "bytes", "bad_seed_url", "send_bad_url",
           "item_object", "item_set", "partial_then_raise", "recursion")
POISON = ("good", "surrogate_item", "surrogate_send", "surrogate_error", "sys_exit")


def _recurse(n):
    return _recurse(n + 1) + 1


class _Misbehaving(Spider):
    behaviours = ()
    pages = 0

    def start_seeds(self):
        for i in range(self.pages):
            yield Seed(PLAIN + "g/%d" % i)

    def parse(self, response, seed):
        path = seed.url[len(PLAIN):]
        if path.startswith("c/"):
            yield {"_id": path}
            return
        i = int(path.split("/")[1])
        what = self.behaviours[i % len(self.behaviours)]
        if what == "good":
            yield Seed(PLAIN + "c/%d" % i)
            yield {"_id": path}
        elif what in ("int", "none", "str", "list", "bytes"):
            yield {"int": 42, "none": None, "str": "text", "list": [1], "bytes": b"x"}[what]
        elif what == "bad_seed_url":
            yield Seed("notaurl")
        elif what == "send_bad_url":
            self.send("javascript:alert(1)")
        elif what == "item_object":
            yield {"_id": object()}
        elif what == "item_set":
            yield {"_id": path, "v": {1, 2}}
        elif what == "partial_then_raise":
            yield Seed(PLAIN + "leak/%d" % i)
            self.send(PLAIN + "leak/s%d" % i)
            yield {"_id": "leak-" + path}
            raise ValueError("half way")
        elif what == "recursion":
            _recurse(0)
        elif what == "surrogate_item":
            yield {"_id": path, "s": "\ud800"}
        elif what == "surrogate_send":
            yield Seed(PLAIN + "c/%d" % i, meta={"s": "\udc80"})
        elif what == "surrogate_error":
            raise ValueError("bad \ud800 text")
        elif what == "sys_exit":
            raise SystemExit(3)


class ChaosGarbage(_Misbehaving):
    name = "chaos_garbage"
    behaviours = GARBAGE
    pages = 3 * len(GARBAGE)


class ChaosPoison(_Misbehaving):
    """One poison behaviour (``CHAOS_POISON``) among good pages, so each is tried on its own."""

    name = "chaos_poison"
    behaviours = ("good", os.environ.get("CHAOS_POISON", "sys_exit"))
    pages = 6


class ChaosPlain(Spider):
    """A few good pages: the background for seeds pushed raw into its queue."""

    name = "chaos_plain"
    start_urls = [PLAIN + "p/%d" % i for i in range(8)]

    def parse(self, response, seed):
        yield {"_id": seed.url[len(PLAIN):]}
