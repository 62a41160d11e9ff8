"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium via /usr/bin/chromedriver)."""
import json
import os
import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from microspider.state import keys
from tests.crawl import microspider
from tests.servers import wait_until
from tests.webserver import TOKEN, folder, populate, stat_json, store_uri, web  # noqa: F401 (fixtures)

NAME = "shop"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FIGURES = ("work", "in_flight", "backlog", "backlog_due", "backlog_waiting", "backlog_over_age",
           "quarantined", "cached", "items", "failures", "workers", "pages_per_s")


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMEDRIVER), "these tests need Debian's chromium and chromium-driver"
    profile = tempfile.mkdtemp(prefix="ms-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--user-data-dir=" + profile, "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                              options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)




@pytest.fixture
def shop(web, r, folder):
    return populate(r, store_uri(folder), NAME)


def shown(browser, key, row=None):
    """The text of a figure; the live update may replace the element between find and read: retry."""
    scope = '[data-spider="%s"] ' % row if row else ""
    for _ in range(20):
        try:
            return browser.find_element(By.CSS_SELECTOR, scope + '[data-key="%s"]' % key).text
        except StaleElementReferenceException:
            continue
    raise AssertionError("the figure %s kept being replaced" % key)


def not_pwned(browser):
    return browser.execute_script("return [document.title, typeof window.pwned]")


def test_the_page_shows_stat_json_and_follows_a_push_without_reload(browser, web, shop, redis_url, folder):
    browser.get(web.url + "/spider/" + NAME)
    expected = stat_json(redis_url, store_uri(folder), folder, NAME)
    for key in FIGURES:
        assert shown(browser, key) == str(expected[key]), key
    browser.execute_script("window.notReloaded = 'yes'")
    pushed = microspider("push", "--redis", redis_url, "--mongo-uri", store_uri(folder), NAME,
                         "http://a.example/new1", "http://a.example/new2", cwd=folder)
    assert pushed.returncode == 0, pushed.stderr
    wait_until(lambda: shown(browser, "work") == "5", timeout=10, message="the page to show work 5")
    assert browser.execute_script("return window.notReloaded") == "yes"
    assert stat_json(redis_url, store_uri(folder), folder, NAME)["work"] == 5


def test_the_overview_follows_a_push_too(browser, web, shop, redis_url, folder):
    browser.get(web.url + "/")
    assert shown(browser, "work", NAME) == "3"
    assert browser.find_element(By.CSS_SELECTOR, '[data-spider="shop"] [data-key="state"]').text == "running"
    browser.execute_script("window.notReloaded = 'yes'")
    microspider("push", "--redis", redis_url, "--mongo-uri", store_uri(folder), NAME,
                "http://a.example/new3", cwd=folder)
    wait_until(lambda: shown(browser, "work", NAME) == "4", timeout=10, message="work 4")
    assert browser.execute_script("return window.notReloaded") == "yes"


def test_a_hostile_body_never_runs_where_the_dashboard_shows_it(browser, web, shop):
    browser.get(web.url + "/spider/" + NAME)
    text = browser.find_element(By.CSS_SELECTOR, '[data-failure="%s"] [data-key="body-text"]' % shop).text
    assert "<script>document.title='pwned'; window.pwned = 1;</script>" in text
    for summary in browser.find_elements(By.CSS_SELECTOR, '[data-failure="%s"] details summary' % shop):
        summary.click()      # opens every part, the sandboxed rendering included
    frame = browser.find_element(By.CSS_SELECTOR, '[data-failure="%s"] iframe' % shop)
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    wait_until(lambda: browser.find_elements(By.ID, "visible"), timeout=10, message="the sandboxed body")
    assert browser.find_element(By.ID, "visible").text == "hostile page"
    assert not_pwned(browser) == ["page", "undefined"]       # the body's own scripts did not run
    browser.switch_to.default_content()
    assert not_pwned(browser) == ["shop · microspider", "undefined"]
    browser.get(web.url + "/spider/%s/failure/%s/body" % (NAME, shop))   # opened on its own
    assert browser.find_element(By.ID, "visible").text == "hostile page"
    assert not_pwned(browser) == ["page", "undefined"]


def test_actions_need_the_token_in_the_browser_too(browser, web, shop, r):
    browser.get(web.url + "/spider/" + NAME)
    before = r.lrange(keys.work(NAME), 0, -1)
    form = browser.find_element(By.CSS_SELECTOR, 'form[action^="/spider/shop/relay"]')
    form.find_element(By.NAME, "token").send_keys("not-the-token")
    form.find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: browser.find_elements(By.ID, "message"), timeout=10, message="the answer")
    assert browser.find_element(By.TAG_NAME, "h1").text == "403"
    assert r.lrange(keys.work(NAME), 0, -1) == before
    browser.get(web.url + "/spider/" + NAME)
    form = browser.find_element(By.CSS_SELECTOR, 'form[action^="/spider/shop/relay"]')
    form.find_element(By.NAME, "token").send_keys(TOKEN)
    form.find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: browser.find_elements(By.ID, "message"), timeout=10, message="the answer")
    assert browser.find_element(By.ID, "message").text == \
        "2 seeds moved to the work queue, 1 stayed in the backlog"
    assert [json.loads(raw)["url"] for raw in r.lrange(keys.work(NAME), 3, -1)] == \
        ["http://a.example/b1", "http://a.example/b2"]


def test_a_page_from_another_origin_cannot_act(browser, web, shop, r, tmp_path):
    """A form on another origin (a file:// page here) posting the right token is refused."""
    attack = tmp_path / "attack.html"
    attack.write_text('<form id=f method=post action="%s/spider/shop/relay">'
                      '<input name=token value="%s"></form>' % (web.url, TOKEN))
    before = r.lrange(keys.work(NAME), 0, -1)
    browser.get(attack.as_uri())
    browser.execute_script("document.getElementById('f').submit()")
    wait_until(lambda: browser.current_url.startswith(web.url), timeout=10, message="the post")
    wait_until(lambda: browser.find_elements(By.ID, "message"), timeout=10, message="the answer")
    assert browser.find_element(By.TAG_NAME, "h1").text == "403"
    assert r.lrange(keys.work(NAME), 0, -1) == before
