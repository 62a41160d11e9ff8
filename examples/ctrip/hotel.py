"""ctrip_hotel: a city's hotel list pages -> each hotel to ctrip_hotel_info, the next page to itself."""
from microspider import Seed, Spider


class PageRejected(ValueError):
    """The page is not a hotel list (a captcha or a broken page): let the framework retry it."""


class HotelSpider(Spider):
    name = "ctrip_hotel"
    upstream = ["ctrip_city"]

    def parse(self, response, seed):
        if "访问过于频繁" in response.text:
            raise PageRejected("captcha page")
        listing = response.css("ul.hotel_list")
        if not listing:
            raise PageRejected("no hotel list on %s" % response.url)
        for href in listing.css("li.hotel_item h2.hotel_name a::attr(href)").getall():
            self.send(Seed(url=response.urljoin(href), meta=dict(seed.meta)), to="ctrip_hotel_info")
        next_page = response.css("div.pager a.next::attr(href)").get()
        if next_page is not None:
            yield Seed(url=response.urljoin(next_page), meta=dict(seed.meta))
