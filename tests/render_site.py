"""A local shop whose pages need a browser: links made by JavaScript, data loaded by XHR.

``/`` holds no link in its HTML; a script writes ``items`` links ``a.item`` to
``/item/N``.  ``/item/N`` (and ``/slow/N``, answered after 1.5 s) is an empty shell whose script fetches
``/api/item/N`` (JSON, optionally slow) and writes ``h1.name`` and
``span.price`` into the page.  A plain HTTP client sees none of that.
"""
import json
import time

from tests.servers import Site

LIST = """<html><head><title>shop</title></head><body><div id="list"></div><script>
var list = document.getElementById('list');
for (var i = 0; i < %d; i++) {
  var a = document.createElement('a');
  a.href = '/item/' + i; a.className = 'item'; a.textContent = 'item ' + i;
  list.appendChild(a);
}
</script></body></html>"""
ITEM = """<html><head><title>item</title></head><body><div id="item">loading</div><script>
fetch('/api/item/%d').then(function (r) { return r.json(); }).then(function (d) {
  document.getElementById('item').innerHTML =
    '<h1 class="name">' + d.name + '</h1><span class="price">' + d.price + '</span>';
});
</script></body></html>"""


def price(n):
    return 100 + 7 * n


def shop_site(items=12, api_delay=0.0):
    """A started Site; stop() it when done."""
    def route(handler, path, attempt):
        if path == "/":
            return 200, {}, LIST % items
        if path.startswith("/slow/"):   # the document itself takes 1.5 s
            time.sleep(1.5)
            return 200, {}, ITEM % int(path.rsplit("/", 1)[1])
        if path.startswith("/item/"):
            return 200, {}, ITEM % int(path.rsplit("/", 1)[1])
        if path.startswith("/api/item/"):
            n = int(path.rsplit("/", 1)[1])
            if api_delay:
                time.sleep(api_delay)
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"name": "Item %d" % n, "price": price(n)})
        if path == "/moved":
            return 302, {"Location": "/item/1", "Set-Cookie": "hop=1"}, ""
        if path == "/cookie":
            return 200, {"Set-Cookie": "session=abc; Path=/"}, "<p>%s</p>" % handler.headers.get("Cookie")
        if path == "/echo":
            return 200, {}, "<pre>%s</pre>" % json.dumps(dict(handler.headers))
        return 404, {}, "<h1>no such page</h1>"
    return Site(route).start()


SHOP_SPIDER = '''
class Shop(Spider):
    name = "shop"
    start_urls = ["{url}/"]
    render = True
    render_wait = "a.item, h1.name"
    retry = 3

    def parse(self, response, seed):
        if seed.url.endswith("/"):
            for a in response.soup.select("a.item"):
                yield Seed("{url}" + a["href"])
            return
        {fault}
        yield {{"_id": seed.url, "name": response.soup.select_one("h1.name").text,
                "price": int(response.soup.select_one("span.price").text)}}
'''
