"""ctrip_city: the city list -> one list-page seed per city, sent to ctrip_hotel.

The site's address comes from the environment variable CTRIP_SITE
(default ``http://127.0.0.1:8765/``, where ``python -m examples.ctrip.site`` listens).
"""
import os
from microspider import Seed, Spider


class PageRejected(ValueError):
    """The page is not the city list (a captcha or a broken page): let the framework retry it."""


class CitySpider(Spider):
    name = "ctrip_city"
    start_urls = [os.environ.get("CTRIP_SITE", "http://127.0.0.1:8765/")]

    def parse(self, response, seed):
        if "访问过于频繁" in response.text:
            raise PageRejected("captcha page")
        links = response.css("ul.city_list a.city")     # parsel: lxml speed
        if not links:
            raise PageRejected("no city links on %s" % response.url)
        for link in links:
            city = link.css("::text").get("").strip()
            self.send(Seed(url=response.urljoin(link.attrib["href"]), meta={"city": city}),
                      to="ctrip_hotel")
        return ()
