"""ctrip_hotel_info: a hotel page -> one item {_id, name, city, opened, renovated}.

The years sit in running text (``2008年开业&nbsp;&nbsp;2016年装修&nbsp;&nbsp;客房数：230``);
a hotel never renovated has no ``装修`` part, and its item says ``renovated: None``.
"""
import re

from microspider import Spider

HOTEL_URL = re.compile(r"/hotel/(\d+)\.html")
OPENED = re.compile(r"(\d{4})年开业")
RENOVATED = re.compile(r"(\d{4})年装修")


class PageRejected(ValueError):
    """The page is not a complete hotel page (a captcha or a broken page): let the framework retry it."""


class HotelInfoSpider(Spider):
    name = "ctrip_hotel_info"
    upstream = ["ctrip_hotel"]

    def parse(self, response, seed):
        if "访问过于频繁" in response.text:
            raise PageRejected("captcha page")
        title = response.css("h1.hotel-title::text").get()
        basic = response.css("div.hotel-info p.basic-info")
        hotel_id = HOTEL_URL.search(response.url)
        if title is None or not basic or hotel_id is None:
            raise PageRejected("no hotel information on %s" % response.url)
        text = "".join(basic.css("::text").getall())
        opened = OPENED.search(text)
        if opened is None:
            raise PageRejected("no opening year in %r" % text)
        renovated = RENOVATED.search(text)
        yield {
            "_id": hotel_id.group(1),
            "name": title.strip(),
            "city": seed.meta.get("city") or _city_from_crumb(response),
            "opened": int(opened.group(1)),
            "renovated": int(renovated.group(1)) if renovated else None,
        }


def _city_from_crumb(response):
    """The city of a hotel page reached without meta (e.g. a pushed URL): ``北京酒店`` -> ``北京``."""
    crumb = response.css("a.crumb-city::text").get()
    return crumb.strip()[: -len("酒店")] if crumb else None
