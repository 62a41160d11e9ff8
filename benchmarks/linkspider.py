"""The benchmark spider: counts the links of each page with lxml, follows none.

Its parse is the bare loop's (``benchmarks.bare.count_links``), and it yields
nothing: no item, no seed.  So the benchmark compares what the engine adds
around a fetch and a parse (take, cache check, acknowledge, counters) and not
the cost of an item store, and the page set stays exactly the N seeds pushed.
"""
import lxml.html

from microspider import Spider


class LinkSpider(Spider):
    name = "bench_links"

    def parse(self, response, seed):
        len(lxml.html.fromstring(response.content).xpath("//a"))  # counted, not kept
        return ()
