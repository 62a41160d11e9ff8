"""``microspider push SPIDER --sitemap URL``: every ``<loc>`` of a sitemap into the work queue.

A sitemap (``<urlset>``), a sitemap index (``<sitemapindex>``, followed up to
``MAX_DEPTH`` levels), or a plain text sitemap (one URL a line), gzip-compressed
or not, is read as a stream: fetched in chunks through the spider's proxies
and headers, decompressed chunk by chunk, parsed incrementally
(``lxml.etree.XMLPullParser``), each element dropped once read.  What one file
holds is pushed when the file has been read whole, through ``push_seeds``
(the same checks as any push), in batches.  Per file at most ``MAX_BYTES``
uncompressed and ``MAX_URLS`` URLs (the sitemaps.org limits): a larger file,
or a gzip bomb, is one line naming it and is skipped; the others go on::

    report = push_sitemap(redis, "shop", fetcher, "https://shop.example/sitemap.xml",
                          keep=re.compile(r"/product/"), say=print)
    report.pushed, report.files, report.skipped

Memory stays flat: at most one file's URLs (50,000) are held at a time.
"""
import dataclasses
import zlib

from lxml import etree

from ..errors import ConfigError, FetchError
from ..seed import Seed
from .seeding import PUSH_BATCH, push_seeds

MAX_BYTES = 50 * 1024 * 1024
MAX_URLS = 50000
MAX_DEPTH = 5
CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class SkipFile(Exception):
    """This file breaks a limit or cannot be read: skipped, the others go on."""


@dataclasses.dataclass
class Report:
    pushed: int = 0
    cached: int = 0
    filtered: int = 0
    files: int = 0
    skipped: int = 0


def push_sitemap(redis, name, fetcher, url, keep=None, say=print, force=False, recrawl=None):
    """Push every page URL of the sitemap at `url` (and the sitemaps it lists) to spider `name`.

    `fetcher` is a ``transport.fetcher.Urllib3Fetcher`` (its ``stream``); `keep` a compiled
    regex page URLs must match (``re.search``); `say` prints one line.  ConfigError when the
    first sitemap cannot be fetched; a Report otherwise.
    """
    report = Report()
    pending = [(url, 0)]
    while pending:
        where, depth = pending.pop(0)
        try:
            kind, urls = read_file(fetcher, where)
        except SkipFile as exc:
            if where == url and not report.files:
                raise ConfigError("sitemap %s: %s" % (where, exc)) from None
            report.skipped += 1
            say("sitemap %s skipped: %s" % (where, exc))
            continue
        report.files += 1
        if kind == "index":
            if depth >= MAX_DEPTH:
                report.skipped += 1
                say("sitemap index %s skipped: nested deeper than %d levels" % (where, MAX_DEPTH))
                continue
            pending.extend((u, depth + 1) for u in urls)
            continue
        _push(redis, name, urls, keep, report, force, recrawl)
    return report


def _push(redis, name, urls, keep, report, force, recrawl):
    for start in range(0, len(urls), PUSH_BATCH):
        seeds = []
        for url in urls[start:start + PUSH_BATCH]:
            if keep is not None and not keep.search(url):
                report.filtered += 1
                continue
            try:
                seeds.append(Seed(url))
            except ValueError:
                report.filtered += 1   # not an http(s) URL: nothing to crawl
        pushed, cached = push_seeds(redis, name, seeds, force=force, recrawl=recrawl)
        report.pushed += pushed
        report.cached += cached


def read_file(fetcher, url):
    """("index" or "urls", [URL]) of one sitemap file, read as a stream; SkipFile if it cannot be."""
    try:
        chunks = fetcher.stream(Seed(url), CHUNK)
    except (FetchError, ValueError) as exc:
        raise SkipFile(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    reader = _Reader()
    try:
        for data in _decompressed(chunks):
            reader.feed(data)
        return reader.close()
    except FetchError as exc:
        raise SkipFile(str(exc).splitlines()[0]) from None
    finally:
        chunks.close()


def _decompressed(chunks):
    """The uncompressed bytes of a (maybe gzip) stream, chunk by chunk; SkipFile past MAX_BYTES."""
    inflate, total = None, 0
    for chunk in chunks:
        if inflate is None:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if chunk[:2] == GZIP_MAGIC else False
        pieces = _inflate(inflate, chunk) if inflate else (chunk,)
        for piece in pieces:
            total += len(piece)
            if total > MAX_BYTES:
                raise SkipFile("over %d MB uncompressed" % (MAX_BYTES // 2 ** 20))
            yield piece


def _inflate(inflate, chunk):
    """Decompress `chunk` at most CHUNK bytes at a time, so a bomb never inflates all at once."""
    try:
        out = inflate.decompress(chunk, CHUNK)
        while out:
            yield out
            out = inflate.decompress(inflate.unconsumed_tail, CHUNK) if inflate.unconsumed_tail else b""
    except zlib.error as exc:
        raise SkipFile("bad gzip data: %s" % exc) from None


class _Reader:
    """URLs of an XML sitemap (incremental) or of a text one (a URL a line)."""

    def __init__(self):
        self.urls = []
        self.kind = None
        self.parser = None
        self.text = None         # the unfinished last line of a text sitemap

    def feed(self, data):
        if self.parser is None and self.text is None:
            if not data.strip():
                return
            if data.lstrip()[:1] == b"<" or data[:3] == b"\xef\xbb\xbf":
                self.parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False,
                                                  no_network=True, huge_tree=False)
            else:
                self.text, self.kind = b"", "urls"
        if self.parser is not None:
            try:
                self.parser.feed(data)
            except etree.XMLSyntaxError as exc:
                raise SkipFile("not a sitemap: %s" % exc) from None
            self._drain()
        else:
            lines = (self.text + data).split(b"\n")
            self.text = lines.pop()
            for line in lines:
                self._add_line(line)

    def _add_line(self, line):
        url = line.strip().decode("utf-8", "replace")
        if url:
            self._add(url)

    def _add(self, url):
        self.urls.append(url)
        if len(self.urls) > MAX_URLS:
            raise SkipFile("over %d URLs" % MAX_URLS)

    def _drain(self):
        for event, element in self.parser.read_events():
            tag = etree.QName(element).localname if isinstance(element.tag, str) else ""
            if event == "start":
                if self.kind is None:
                    if tag not in ("urlset", "sitemapindex"):
                        raise SkipFile("not a sitemap: root element <%s>" % tag)
                    self.kind = "index" if tag == "sitemapindex" else "urls"
                continue
            if tag == "loc" and element.text and element.text.strip():
                self._add(element.text.strip())
            elif tag in ("url", "sitemap"):
                element.clear()                   # what was read goes: flat memory
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]

    def close(self):
        if self.parser is not None:
            try:
                self.parser.close()
            except etree.XMLSyntaxError as exc:
                raise SkipFile("not a sitemap: %s" % exc) from None
            self._drain()
        elif self.text:
            self._add_line(self.text)
        if self.kind is None:
            raise SkipFile("empty")
        return self.kind, self.urls
