"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven over DevTools)."""
import json
import os

import pytest

from microspider.state import keys
from tests.crawl import microspider
from tests.devtools_page import CHROMIUM, DevtoolsPage
from tests.servers import wait_until
from tests.webserver import TOKEN, folder, populate, stat_json, store_uri, web  # noqa: F401 (fixtures)

NAME = "shop"
FIGURES = ("work", "in_flight", "backlog", "backlog_due", "backlog_waiting", "backlog_over_age",
           "quarantined", "cached", "items", "failures", "workers", "pages_per_s")


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "these tests need Debian's chromium (scripts/browser.sh)"
    page = DevtoolsPage(CHROMIUM)
    yield page
    page.close()


@pytest.fixture
def shop(web, r, folder):
    return populate(r, store_uri(folder), NAME)


def shown(browser, key, row=None):
    """The text of a figure, as the page shows it now."""
    scope = '[data-spider="%s"] ' % row if row else ""
    return browser.text(scope + '[data-key="%s"]' % key)


def not_pwned(browser):
    return browser.script("return [document.title, typeof window.pwned]")


def test_the_page_shows_stat_json_and_follows_a_push_without_reload(browser, web, shop, redis_url, folder):
    browser.get(web.url + "/spider/" + NAME)
    expected = stat_json(redis_url, store_uri(folder), folder, NAME)
    for key in FIGURES:
        assert shown(browser, key) == str(expected[key]), key
    browser.script("window.notReloaded = 'yes'")
    pushed = microspider("push", "--redis", redis_url, "--mongo-uri", store_uri(folder), NAME,
                         "http://a.example/new1", "http://a.example/new2", cwd=folder)
    assert pushed.returncode == 0, pushed.stderr
    wait_until(lambda: shown(browser, "work") == "5", timeout=10, message="the page to show work 5")
    assert browser.script("return window.notReloaded") == "yes"
    assert stat_json(redis_url, store_uri(folder), folder, NAME)["work"] == 5


def test_the_overview_follows_a_push_too(browser, web, shop, redis_url, folder):
    browser.get(web.url + "/")
    assert shown(browser, "work", NAME) == "3"
    assert browser.text('[data-spider="shop"] [data-key="state"]') == "running"
    browser.script("window.notReloaded = 'yes'")
    microspider("push", "--redis", redis_url, "--mongo-uri", store_uri(folder), NAME,
                "http://a.example/new3", cwd=folder)
    wait_until(lambda: shown(browser, "work", NAME) == "4", timeout=10, message="work 4")
    assert browser.script("return window.notReloaded") == "yes"


def test_a_hostile_body_never_runs_where_the_dashboard_shows_it(browser, web, shop):
    browser.get(web.url + "/spider/" + NAME)
    text = browser.text('[data-failure="%s"] [data-key="body-text"]' % shop)
    assert "<script>document.title='pwned'; window.pwned = 1;</script>" in text
    # opens every part, the sandboxed rendering included
    assert browser.click('[data-failure="%s"] details summary' % shop) >= 1
    frame = '[data-failure="%s"] iframe' % shop
    assert browser.attribute(frame, "sandbox") == ""
    browser.switch_to_frame(frame)
    wait_until(lambda: browser.count("#visible"), timeout=10, message="the sandboxed body")
    assert browser.text("#visible") == "hostile page"
    assert not_pwned(browser) == ["page", "undefined"]       # the body's own scripts did not run
    browser.switch_to_page()
    assert not_pwned(browser) == ["shop · microspider", "undefined"]
    browser.get(web.url + "/spider/%s/failure/%s/body" % (NAME, shop))   # opened on its own
    assert browser.text("#visible") == "hostile page"
    assert not_pwned(browser) == ["page", "undefined"]


def _submit_relay(browser, token):
    form = 'form[action^="/spider/shop/relay"]'
    browser.type(form + ' [name="token"]', token)
    assert browser.click(form + " button") == 1
    wait_until(lambda: browser.count("#message"), timeout=10, message="the answer")


def test_actions_need_the_token_in_the_browser_too(browser, web, shop, r):
    browser.get(web.url + "/spider/" + NAME)
    before = r.lrange(keys.work(NAME), 0, -1)
    _submit_relay(browser, "not-the-token")
    assert browser.text("h1") == "403"
    assert r.lrange(keys.work(NAME), 0, -1) == before
    browser.get(web.url + "/spider/" + NAME)
    _submit_relay(browser, TOKEN)
    assert browser.text("#message") == "2 seeds moved to the work queue, 1 stayed in the backlog"
    assert [json.loads(raw)["url"] for raw in r.lrange(keys.work(NAME), 3, -1)] == \
        ["http://a.example/b1", "http://a.example/b2"]


def test_a_page_from_another_origin_cannot_act(browser, web, shop, r, tmp_path):
    """A form on another origin (a file:// page here) posting the right token is refused."""
    attack = tmp_path / "attack.html"
    attack.write_text('<form id=f method=post action="%s/spider/shop/relay">'
                      '<input name=token value="%s"></form>' % (web.url, TOKEN))
    before = r.lrange(keys.work(NAME), 0, -1)
    browser.get(attack.as_uri())
    browser.script("document.getElementById('f').submit()")
    wait_until(lambda: browser.url.startswith(web.url), timeout=10, message="the post")
    wait_until(lambda: browser.count("#message"), timeout=10, message="the answer")
    assert browser.text("h1") == "403"
    assert r.lrange(keys.work(NAME), 0, -1) == before
