"""Rendered pages wait for the page's own requests; tabs, cookies and blocked media (issue 20).

Real headless Chromium and Lightpanda against real local sites (the tests
that take ``engine`` run on each, Lightpanda's fallback off); the waiting rule
itself (``render.wait.Settle``) is also checked on its own with an injected clock.
"""
import json
import threading
import time

import pytest
from requests.structures import CaseInsensitiveDict

from microspider import Seed, Spider
from microspider.config import resolve
from microspider.errors import FetchError
from microspider.render.cdp import CommandFailed
from microspider.render.wait import LONG, QUIET, Settle
from microspider.transport.browser import RenderFetcher
from microspider.store import open_store
from tests.crawl import microspider, write_spider
from tests.render_site import price, shop_site


@pytest.fixture(scope="module")
def site():
    shop = shop_site(items=3)
    yield shop
    shop.stop()


class Plain(Spider):
    name = "plain"

    def parse(self, response, seed):
        pass


def fetcher(spider=Plain, engine="chromium", **options):
    settings = resolve(dict({"render": True, "retry": 1, "timeout": 10, "render_engine": engine,
                             "render_fallback": False}, **options), spider)
    return RenderFetcher(spider(), settings)


@pytest.fixture(scope="module")
def plain(site, engine):
    f = warm(fetcher(engine=engine), site)
    yield f
    f.close()


def warm(f, site):
    """``f`` with its browser started, so that timings below measure pages, not start-up."""
    f.fetch(Seed(site.url + "/item/0"))
    return f


def timed(f, url):
    started = time.monotonic()
    response = f.fetch(Seed(url))
    return response, time.monotonic() - started


def item(response):
    name = response.soup.select_one("h1.name")
    return name and (name.text, int(response.soup.select_one("span.price").text))


# -- the rule, with an injected clock -------------------------------------------------------
def test_settle_waits_for_the_load_event_and_quiet_after_the_last_request():
    s = Settle(now=0.0)
    s.started("doc", "Document", 0.0)
    s.ended("doc", 0.1)
    s.started("api", "Fetch", 0.2)
    s.loaded = True
    assert not s.ready(1.0)                      # the fetch is in flight
    s.ended("api", 1.2)
    assert not s.ready(1.2 + QUIET - 0.01) and s.ready(1.2 + QUIET)
    assert Settle(now=0.0).ready(5.0) is False   # no load event, no read


def test_settle_does_not_count_streams_and_stops_counting_long_requests():
    s = Settle(now=0.0)
    s.loaded = True
    s.started("events", "EventSource", 0.0)
    assert s.ready(QUIET)
    s.started("poll", "XHR", 0.0)
    assert not s.ready(LONG - 0.01)
    assert not s.ready(LONG + QUIET - 0.01) and s.ready(LONG + QUIET)
    assert abs(s.next_look(1.0) - (LONG - 1.0)) < 1e-9


# -- a real browser ---------------------------------------------------------------------
@pytest.mark.parametrize("delay_ms", [200, 1000])
def test_without_render_wait_a_fetch_that_answers_late_is_in_the_dom(site, plain, delay_ms):
    response, took = timed(plain, site.url + "/late/%d/4" % delay_ms)
    assert item(response) == ("Item 4", price(4))
    assert delay_ms / 1000.0 + QUIET - 0.05 <= took < 10      # 10: --timeout, the cap


def test_a_fetch_that_never_ends_is_read_at_the_timeout_not_hung(site, engine):
    f = warm(fetcher(engine=engine, timeout=3), site)
    try:
        response, took = timed(f, site.url + "/late/200/5/never")
    finally:
        f.close()
    assert item(response) == ("Item 5", price(5))
    assert 3 - 0.05 <= took < 7      # the cap, plus reading the page on a busy machine


def test_a_long_request_stops_holding_the_page_and_a_stream_never_does(site, plain):
    response, took = timed(plain, site.url + "/late/200/6/never")   # --timeout 10 > LONG
    assert item(response) == ("Item 6", price(6))
    assert LONG <= took < 10                           # released before the cap
    response, took = timed(plain, site.url + "/late/200/7/stream")
    assert item(response) == ("Item 7", price(7)) and took < LONG   # the stream never counted


def test_the_request_headers_are_the_headers_sent(site, plain, engine):
    response = plain.fetch(Seed(site.url + "/echo", headers={"X-Probe": "yes"}, cookies={"c": "v"}))
    sent = CaseInsensitiveDict(json.loads(response.soup.pre.text))   # Sec-Ch-Ua or sec-ch-ua
    assert sent["X-Probe"] == "yes"
    assert response.request.headers["X-Probe"] == "yes"
    # the browser's own headers too (SPEC 0.3: the headers that were sent)
    assert response.request.headers["User-Agent"] == sent["User-Agent"]
    assert response.request.headers["sec-ch-ua"] == sent["sec-ch-ua"]
    assert sent["Cookie"] == "c=v"
    if engine == "chromium":   # Lightpanda 1.0.2 reports a cookie's value cut off ("c=") in its events
        assert response.request.headers["Cookie"] == "c=v"


def test_cookies_do_not_leak_between_seeds_in_one_tab(site, engine):
    f = fetcher(engine=engine, render_pages=1)
    try:
        assert f.fetch(Seed(site.url + "/cookie")).cookies["session"] == "abc"
        echo = f.fetch(Seed(site.url + "/echo", cookies={"mine": "1"}))
        assert f.pool.started == 1 and len(f.pool.browsers()[0].tabs) == 1
    finally:
        f.close()
    assert json.loads(echo.soup.pre.text)["Cookie"] == "mine=1"


class Visible(Plain):
    render_visible = True


def test_pages_are_hidden_unless_the_spider_asks_to_see_them(site, plain, engine):
    if engine != "chromium":
        return   # only Chromium paints: hidden windows are how it stops painting
    # hidden (a minimized window): scripts, timers and requests run, animation frames do not
    hidden = plain.fetch(Seed(site.url + "/frame/4"))
    assert hidden.soup.select_one("#seen").text == "hidden"
    assert hidden.soup.select_one("#item").text == "loading"
    assert item(plain.fetch(Seed(site.url + "/late/200/4"))) == ("Item 4", price(4))
    f = fetcher(Visible)
    try:
        shown = f.fetch(Seed(site.url + "/frame/4"))
    finally:
        f.close()
    assert shown.soup.select_one("#seen").text == "visible"
    assert item(shown) == ("Item 4", price(4))


def test_a_browser_that_cannot_minimize_shows_its_pages(site, plain, monkeypatch, engine):
    if engine != "chromium":
        return   # windows are Chromium's
    browser = plain.pool.browsers()[0]
    real = browser.cdp.send

    def send(method, params=None, session=None, timeout=None):
        if method == "Browser.getWindowForTarget":
            raise CommandFailed("Browser.getWindowForTarget: 'Browser.getWindowForTarget' wasn't found")
        return real(method, params, session, timeout)

    monkeypatch.setattr(browser.cdp, "send", send)
    tab = browser.open_tab()
    monkeypatch.undo()
    try:
        page = plain._render(tab, Seed(site.url + "/frame/5"))
    finally:
        browser.close_tab(tab)
    assert tab.visible and page.soup.select_one("#seen").text == "visible"
    assert item(page) == ("Item 5", price(5))


def test_a_screenshot_of_a_hidden_page_shows_it(site, plain, engine):
    if engine != "chromium":
        return   # Lightpanda paints nothing
    tab = plain.pool.acquire()
    try:
        plain._render(tab, Seed(site.url + "/item/3"))
        shot = tab.screenshot()
        assert tab.evaluate("document.visibilityState") == "hidden"   # minimized again
    finally:
        plain.pool.release(tab)
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")


def test_images_are_not_loaded_unless_the_spider_asks(site, plain, engine):
    before = site.count("/picture.png")
    assert item(plain.fetch(Seed(site.url + "/late/0/1/image"))) == ("Item 1", price(1))
    assert site.count("/picture.png") == before

    class Media(Plain):
        render_media = True

    f = fetcher(Media, engine=engine)
    try:
        f.fetch(Seed(site.url + "/late/0/2/image"))
    finally:
        f.close()
    assert site.count("/picture.png") == before + 1


def test_pages_render_side_by_side_in_tabs_of_one_browser(site, engine):
    f = fetcher(engine=engine, render_pages=4, render_tabs=4)
    results, durations = {}, []

    def one(n):
        started = time.monotonic()
        results[n] = item(f.fetch(Seed(site.url + "/late/1000/%d" % n)))
        durations.append(time.monotonic() - started)
    try:
        # the browser starts in this thread: PR_SET_PDEATHSIG ties it to the thread that started it
        one(4)
        del durations[:]
        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        took = time.monotonic() - started
        assert f.pool.started == 1 and len(f.pool.browsers()[0].tabs) == 4
    finally:
        f.close()
    assert results == {n: ("Item %d" % n, price(n)) for n in range(5)}
    # side by side, the four pages' times overlap; one after another, they would add up
    assert len(durations) == 4 and took < 0.6 * sum(durations), (took, durations)


def test_verify_false_accepts_any_certificate_in_the_browser(tls_site, engine):
    class Insecure(Plain):
        verify = False

    target = "https://127.0.0.1:%d/hotel" % tls_site.server.server_address[1]
    with pytest.raises(FetchError, match={"chromium": "ERR_CERT", "lightpanda": "PeerFailedVerification"}[engine]):
        strict = fetcher(engine=engine, retry=0)
        try:
            strict.fetch(Seed(target))
        finally:
            strict.close()
    f = fetcher(Insecure, engine=engine)
    try:
        assert "secret page /hotel" in f.fetch(Seed(target)).text
    finally:
        f.close()


LATE_SPIDER = '''
class Late(Spider):
    name = "late"
    start_urls = [{urls}]
    render = True
    render_engine = "{engine}"
    render_fallback = False
    retry = 2

    def parse(self, response, seed):
        yield {{"_id": seed.url, "name": response.soup.select_one("h1.name").text,
                "price": int(response.soup.select_one("span.price").text)}}
'''


def test_a_crawl_without_render_wait_parses_every_late_page(tmp_path, redis_url, site, engine):
    urls = [site.url + "/late/%d/%d" % (ms, n) for ms in (200, 1000) for n in range(10)]
    path = write_spider(tmp_path, "late.py", LATE_SPIDER, urls=", ".join(map(repr, urls)),
                        engine=engine)
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    microspider("run", path, "--idle", "0.3", "--timeout", "10", "--redis", redis_url,
                "--mongo-uri", db, cwd=tmp_path, check=0)
    store = open_store(db, "microspiders", "late")
    items = {i["_id"]: (i["name"], i["price"]) for i in store.iter_items()}
    assert items == {url: ("Item %s" % url.rsplit("/", 1)[1], price(int(url.rsplit("/", 1)[1])))
                     for url in urls}
    assert not list(store.iter_failures())


def test_a_document_that_never_answers_is_a_failed_attempt_and_keeps_the_browser(site, engine):
    f = fetcher(engine=engine, timeout=1, retry=0)
    try:
        f.fetch(Seed(site.url + "/item/0"))
        started = time.monotonic()
        with pytest.raises(FetchError, match="no answer within --timeout"):
            f.fetch(Seed(site.url + "/slow/1"))        # the document takes 1.5 s
        assert time.monotonic() - started < 4
        assert item(f.fetch(Seed(site.url + "/item/2"))) == ("Item 2", price(2))
        assert f.pool.started == 1
    finally:
        f.close()


def test_each_tab_has_its_own_cookie_jar_which_another_tab_cannot_clear(site, plain):
    plain.fetch(Seed(site.url + "/item/0"))      # a browser for the two tabs below
    browser = plain.pool.browsers()[0]
    mine, other = browser.open_tab(), browser.open_tab()
    try:
        here = {"urls": ["http://127.0.0.1:9/"]}
        mine.send("Network.setCookie", {"name": "x", "value": "1", "url": "http://127.0.0.1:9/"})
        assert other.send("Network.getCookies", here)["cookies"] == []
        other.send("Network.clearBrowserCookies")
        assert [c["name"] for c in mine.send("Network.getCookies", here)["cookies"]] == ["x"]
    finally:
        browser.close_tab(mine)
        browser.close_tab(other)
