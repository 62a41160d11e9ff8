"""ctrip_hotel: a city's hotel list pages -> each hotel to ctrip_hotel_info, the next page to itself."""
from urllib.parse import urljoin

from microspider import Seed, Spider


class PageRejected(ValueError):
    """The page is not a hotel list (a captcha or a broken page): let the framework retry it."""


class HotelSpider(Spider):
    name = "ctrip_hotel"
    upstream = ["ctrip_city"]

    def parse(self, response, seed):
        if "访问过于频繁" in response.text:
            raise PageRejected("captcha page")
        listing = response.soup.select_one("ul.hotel_list")
        if listing is None:
            raise PageRejected("no hotel list on %s" % response.url)
        for link in listing.select("li.hotel_item h2.hotel_name a[href]"):
            self.send(Seed(url=urljoin(response.url, link["href"]), meta=dict(seed.meta)),
                      to="ctrip_hotel_info")
        next_page = response.soup.select_one("div.pager a.next[href]")
        if next_page is not None:
            yield Seed(url=urljoin(response.url, next_page["href"]), meta=dict(seed.meta))
