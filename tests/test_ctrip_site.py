"""The local Ctrip-like site (examples/ctrip/site.py) and the parse code of the three example spiders.

Everything goes through real HTTP to a site started in-process on a free port.
"""
import http.client
import importlib
import json
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from microspider.transport.response import make_response
from bs4 import BeautifulSoup

from examples.ctrip.faults import FAULT_KINDS
from examples.ctrip.site import CtripSite

ROOT = Path(__file__).resolve().parent.parent
YEARS = re.compile(r"(\d{4})年开业(?:\xa0\xa0(\d{4})年装修)?\xa0\xa0客房数：(\d+)")


@pytest.fixture
def make_site():
    """Start CtripSite(**options); every site made is stopped after the test."""
    sites = []

    def make(**options):
        site = CtripSite(**options).start()
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


@pytest.fixture(scope="module")
def clean_site():
    """200 hotels, no faults (broken hotels only); shared by the read-only tests."""
    site = CtripSite(hotels=200, seed=11, faults=False).start()
    yield site
    site.stop()


def get(url, **kwargs):
    """One request on a fresh connection, so each is exactly one attempt."""
    return requests.get(url, timeout=kwargs.pop("timeout", 10), **kwargs)


def fetched(url):
    """A response as the engine hands it to parse (``.css``, ``.soup``, ``.urljoin``...)."""
    response = get(url)
    return make_response(response.status_code, response.url, response.headers, response.content)


def hotel_path(site, index):
    return "/hotel/%s.html" % site.catalog.hotel_id(index)


def paths_with_fault(site, kind, attempt=1, count=1):
    """Hotel paths whose request number ``attempt`` gets fault ``kind``."""
    found = [path for path in (hotel_path(site, i) for i in range(site.catalog.size))
             if site.fault_for(path, attempt) == kind]
    assert len(found) >= count, "no %s fault on attempt %d among the hotels" % (kind, attempt)
    return found[:count]


def outcome(url, slow):
    """What one request got: a fault kind, or "ok" for a real page."""
    started = time.monotonic()
    try:
        response = get(url)
    except requests.ConnectionError:
        return "drop"
    if response.status_code in (500, 503):
        return str(response.status_code)
    assert response.status_code == 200, (url, response.status_code)
    if "访问过于频繁" in response.text:
        return "captcha"
    return "slow" if time.monotonic() - started >= slow else "ok"


# -- content ---------------------------------------------------------------------------------
def test_same_seed_gives_the_same_site_and_another_seed_does_not(make_site):
    one, two = make_site(hotels=300, seed=5, faults=False), make_site(hotels=300, seed=5, faults=False)
    other = make_site(hotels=300, seed=6, faults=False)
    paths = ["/", "/hotels/beijing/", "/hotels/beijing/p2/"]
    paths += [hotel_path(one, i) for i in (0, 150, 299)]
    for path in paths:
        first = get(urljoin(one.url, path))
        assert first.status_code == 200
        assert first.content == get(urljoin(two.url, path)).content, path
    truth = get(one.url + "_truth").content
    assert truth == get(two.url + "_truth").content
    assert truth != get(other.url + "_truth").content


def test_list_pages_and_hotel_pages_agree_with_truth(clean_site):
    truth = clean_site.truth()
    listed = walk_lists(clean_site.url)
    assert sorted(listed) == sorted(truth)  # every hotel listed, none twice (walk_lists checks)
    for hotel_id, (name, city) in listed.items():
        assert (name, city) == (truth[hotel_id]["name"], truth[hotel_id]["city"])
    per_city = {}
    for name, city in listed.values():
        per_city[city] = per_city.get(city, 0) + 1
    assert len(per_city) >= 30 and max(per_city.values()) >= 4 * min(per_city.values())
    for hotel_id, record in truth.items():
        soup = BeautifulSoup(get(clean_site.url + "hotel/%s.html" % hotel_id).content, "lxml")
        assert soup.select_one("h1.hotel-title").get_text() == record["name"]
        basic = soup.select_one("div.hotel-info p.basic-info")
        if record["broken"]:
            assert basic is None
            continue
        opened, renovated, _rooms = YEARS.fullmatch(basic.get_text()).groups()
        assert int(opened) == record["opened"]
        assert (int(renovated) if renovated else None) == record["renovated"]


def walk_lists(base):
    """{hotel id: (name, city)} from the city list and every list page, following ``a.next``."""
    soup = BeautifulSoup(get(base).content, "lxml")
    listed = {}
    for city_link in soup.select("a.city"):
        url = urljoin(base, city_link["href"])
        while url:
            page = BeautifulSoup(get(url).content, "lxml")
            links = page.select("li.hotel_item h2.hotel_name a")
            assert len(links) <= 20
            for link in links:
                hotel_id = re.fullmatch(r"/hotel/(\d+)\.html", link["href"]).group(1)
                assert hotel_id not in listed
                assert link["title"] == link.get_text()
                listed[hotel_id] = (link.get_text(), city_link.get_text())
            next_link = page.select_one("a.next")
            assert next_link is None or len(links) == 20
            url = next_link and urljoin(url, next_link["href"])
    return listed


def test_truth_lists_the_broken_hotels(clean_site):
    records = [json.loads(line) for line in get(clean_site.url + "_truth").text.splitlines()]
    assert {r["_id"]: r for r in records} == clean_site.truth()
    broken = [r for r in records if r["broken"]]
    assert len(broken) == 3  # max(3, 200 // 1000)
    for record in broken:
        response = get(clean_site.url + "hotel/%s.html" % record["_id"])
        assert response.status_code == 200 and 'class="hotel-info"' not in response.text


def test_300k_hotels_are_served_without_building_them(make_site):
    site = make_site(hotels=300_000, seed=2, faults=False)
    last = site.catalog.hotel(299_999)
    response = get(site.url + "hotel/%s.html" % last.id)
    assert response.status_code == 200 and last.name in response.text
    assert len(site.catalog.cities) == 40
    assert get(site.url + "hotel/999.html").status_code == 404


# -- faults ----------------------------------------------------------------------------------
def test_faults_come_only_on_the_first_three_attempts(make_site):
    site = make_site(hotels=300, seed=3, fault_rate=0.5, slow=1.0)
    paths = ["/", "/hotels/shanghai/", "/hotels/shanghai/p2/"]
    paths += [hotel_path(site, i) for i in range(0, 300, 12)]

    def four_attempts(path):
        return [outcome(urljoin(site.url, path), slow=1.0) for _ in range(4)]

    with ThreadPoolExecutor(len(paths)) as pool:
        seen = dict(zip(paths, pool.map(four_attempts, paths)))
    for path, outcomes in seen.items():
        expected = [site.fault_for(path, attempt) or "ok" for attempt in (1, 2, 3, 4)]
        assert outcomes == expected, path
        assert outcomes[3] == "ok"
    faults = [kind for outcomes in seen.values() for kind in outcomes if kind != "ok"]
    assert set(faults) == set(FAULT_KINDS)
    assert site.stats(hits=False)["faults"] == {kind: faults.count(kind) for kind in FAULT_KINDS}


def test_a_slow_answer_fails_a_shorter_client_timeout(make_site):
    site = make_site(hotels=300, seed=3, fault_rate=0.5, slow=2.0)
    path = paths_with_fault(site, "slow")[0]
    with pytest.raises(requests.Timeout):
        get(urljoin(site.url, path), timeout=0.3)


def test_a_captcha_page_carries_no_hotel_data(make_site):
    site = make_site(hotels=300, seed=3, fault_rate=0.5, slow=0.3)
    path = paths_with_fault(site, "captcha")[0]
    url = urljoin(site.url, path)
    hotel = site.catalog.hotel_by_id(re.search(r"\d+", path).group())
    captcha = get(url)
    assert captcha.status_code == 200 and "访问过于频繁" in captcha.text
    soup = BeautifulSoup(captcha.content, "lxml")
    assert soup.select_one("form#captcha-form input[name=code]") is not None
    assert hotel.name not in captcha.text and "年开业" not in captcha.text
    assert not soup.select("a[href*='/hotel/'], div.hotel-info, h1.hotel-title, li.hotel_item")
    assert [outcome(url, slow=0.3) for _ in range(3)][-1] == "ok"  # attempt 4 always succeeds
    assert hotel.name in get(url).text


def test_no_faults_turns_every_fault_off(make_site):
    site = make_site(hotels=300, seed=3, fault_rate=0.9, faults=False, rate_limit=1)
    for index in range(0, 300, 30):  # ten requests in well under a second: no 429 either
        assert outcome(urljoin(site.url, hotel_path(site, index)), slow=1.0) == "ok"
    assert sum(site.stats(hits=False)["faults"].values()) == 0


def test_rate_limit_refuses_then_recovers(make_site):
    now = [1000.0]
    site = make_site(hotels=100, seed=1, fault_rate=0, rate_limit=5, clock=lambda: now[0])
    assert [get(site.url).status_code for _ in range(5)] == [200] * 5
    refused = get(site.url + "hotels/beijing/")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert status_from(site, "127.0.0.2") == 200  # the limit is per client IP
    assert get(site.url + "_stats").status_code == 200  # the test endpoints are never limited
    now[0] += 0.5
    assert get(site.url).status_code == 429
    now[0] += 0.51
    assert get(site.url).status_code == 200
    assert site.stats(hits=False)["rate_limited"] == 2


def status_from(site, source_ip):
    """Status of ``/`` requested from another loopback address."""
    host, port = urlsplit(site.url).hostname, urlsplit(site.url).port
    connection = http.client.HTTPConnection(host, port, timeout=5, source_address=(source_ip, 0))
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        connection.close()


def test_stats_count_successful_hotel_pages(make_site):
    site = make_site(hotels=200, seed=11, faults=False)
    broken = next(r["_id"] for r in site.truth().values() if r["broken"])
    good = next(r["_id"] for r in site.truth().values() if not r["broken"])
    for hotel_id in (good, good, broken):
        assert get(site.url + "hotel/%s.html" % hotel_id).status_code == 200
    stats = get(site.url + "_stats").json()
    assert stats["hotel_ok_hits"] == {good: 2}
    assert (stats["broken_hits"], stats["hotels_ok"], stats["hotel_ok_duplicates"]) == (1, 1, 1)
    assert stats["requests"]["hotel"] == 3
    assert "hotel_ok_hits" not in get(site.url + "_stats?hits=0").json()


def test_command_line_prints_its_url_and_ends_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.ctrip.site", "--port", "0", "--hotels", "60", "--no-faults"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert len(BeautifulSoup(get(url).content, "lxml").select("a.city")) == 40
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the example spiders' parse code ----------------------------------------------------------
def spider(module):
    """An instance of the spider in examples/ctrip/<module>.py whose sends are recorded in ``.sent``."""
    import microspider

    module = importlib.import_module("examples.ctrip." + module)
    cls = next(c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, microspider.Spider)
               and c.__module__ == module.__name__)
    instance = cls()
    instance.sent = []
    instance.send = lambda seed, to=None: instance.sent.append((to, seed))
    return instance


def run_parse(instance, url, meta=None, response=None):
    """(yielded values, sent (to, seed) pairs) of parse on ``response`` (default: fetch ``url``)."""
    from microspider import Seed

    response = response or fetched(url)
    return list(instance.parse(response, Seed(url=url, meta=meta or {})) or ()), instance.sent


def test_city_spider_sends_one_seed_per_city(clean_site):
    yielded, sent = run_parse(spider("city"), clean_site.url)
    assert yielded == []
    assert [(to, seed.url, seed.meta) for to, seed in sent] == [
        ("ctrip_hotel", clean_site.url + "hotels/%s/" % city.slug, {"city": city.name})
        for city in clean_site.catalog.cities]


def test_hotel_spider_sends_hotels_and_yields_the_next_page(clean_site):
    city = clean_site.catalog.cities[0]
    assert city.pages >= 2
    first = clean_site.url + "hotels/%s/" % city.slug
    yielded, sent = run_parse(spider("hotel"), first, {"city": city.name})
    assert [(seed.url, seed.meta) for seed in yielded] == [
        (clean_site.url + "hotels/%s/p2/" % city.slug, {"city": city.name})]
    assert [(to, seed.url, seed.meta) for to, seed in sent] == [
        ("ctrip_hotel_info", clean_site.url + "hotel/%s.html" % hotel.id, {"city": city.name})
        for hotel in clean_site.catalog.page(city, 1)]
    last = clean_site.url + "hotels/%s/p%d/" % (city.slug, city.pages)
    yielded, sent = run_parse(spider("hotel"), last, {"city": city.name})
    assert yielded == [] and len(sent) == city.count - 20 * (city.pages - 1)


def test_hotel_info_spider_extracts_exactly_the_truth(clean_site):
    records = [r for r in clean_site.truth().values() if not r["broken"]]
    sample = ([r for r in records if r["renovated"] is None][:2]
              + [r for r in records if r["renovated"]][:2]
              + [r for r in records if "&" in r["name"]][:1])  # an escaped name
    assert len(sample) >= 4
    for record in sample:
        url = clean_site.url + "hotel/%s.html" % record["_id"]
        yielded, _ = run_parse(spider("hotel_info"), url, {"city": record["city"]})
        expected = {key: value for key, value in record.items() if key != "broken"}
        assert yielded == [expected]
        assert run_parse(spider("hotel_info"), url)[0] == [expected]  # no meta: city from the page


def test_every_spider_raises_on_a_captcha_page(make_site):
    site = make_site(hotels=300, seed=3, fault_rate=0.5)
    captcha_url = urljoin(site.url, paths_with_fault(site, "captcha")[0])
    captcha = fetched(captcha_url)  # once: the next attempt at this URL may well succeed
    assert "访问过于频繁" in captcha.text
    for module in ("city", "hotel", "hotel_info"):
        instance = spider(module)
        with pytest.raises(ValueError, match="captcha"):
            run_parse(instance, captcha_url, {"city": "北京"}, response=captcha)
        assert instance.sent == []


def test_hotel_info_spider_raises_on_a_broken_hotel(clean_site):
    broken = next(r for r in clean_site.truth().values() if r["broken"])
    with pytest.raises(ValueError, match="no hotel information"):
        run_parse(spider("hotel_info"), clean_site.url + "hotel/%s.html" % broken["_id"],
                  {"city": broken["city"]})
