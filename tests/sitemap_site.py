"""Sitemaps for the tests and the benchmark: an index of gzip files, text, a bomb, nested indexes."""
import gzip
import io

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(urls):
    body = "".join("<url><loc>%s</loc><lastmod>2026-12-01</lastmod></url>\n" % u for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset %s>\n%s</urlset>\n' % (NS, body)).encode()


def index(locs):
    body = "".join("<sitemap><loc>%s</loc></sitemap>\n" % u for u in locs)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex %s>\n%s</sitemapindex>\n'
            % (NS, body)).encode()


def gz(data):
    return gzip.compress(data, 6)


def bomb(size=200 * 1024 * 1024):
    """A gzip file of `size` bytes of XML comments inside a urlset: a few hundred KB on the wire."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as f:
        f.write(b'<?xml version="1.0"?><urlset ' + NS.encode() + b'><url><loc>http://x/</loc></url>')
        block = (b"<!--" + b"x" * 1017 + b"-->") * 1024
        for _ in range(size // len(block)):
            f.write(block)
        f.write(b"</urlset>")
    return out.getvalue()


def files(base, per_file=40000, files_n=3):
    """{path: body} of /sitemap_index.xml listing `files_n` gzip sitemaps of `per_file` URLs each."""
    out = {}
    for n in range(files_n):
        urls = ("%s/product/%d/%d.html" % (base, n, i) for i in range(per_file))
        out["/sitemap-%d.xml.gz" % n] = gz(urlset(urls))
    out["/sitemap_index.xml"] = index("%s/sitemap-%d.xml.gz" % (base, n) for n in range(files_n))
    return out


def route_for(table):
    """A tests.servers.Site route serving `table` ({path: bytes}); 404 elsewhere."""
    def route(handler, path, attempt):
        body = table.get(path)
        if body is None:
            return 404, {}, "no such sitemap"
        kind = "application/gzip" if body[:2] == b"\x1f\x8b" else "application/xml"
        return 200, {"Content-Type": kind}, body
    return route
