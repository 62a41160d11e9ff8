"""The benchmark spider of ``benchmarks.cluster --send``: the link spider, plus one seed sent per page
to another spider (``bench_sink``, never run; on a 3-master cluster its slot is on another master
than ``bench_links``'s), so every batch writes to a second master and, by default, waits for a replica.
"""
from microspider import Seed, Spider
from benchmarks.linkspider import LinkSpider


class SendSpider(LinkSpider):
    name = "bench_links"

    def parse(self, response, seed):
        LinkSpider.parse(self, response, seed)
        self.send(Seed(seed.url + "?sent=1"), to="bench_sink")
        return ()


del Spider
