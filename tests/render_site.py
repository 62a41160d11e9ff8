"""A local shop whose pages need a browser: links made by JavaScript, data loaded by XHR.

``/`` holds no link in its HTML; a script writes ``items`` links ``a.item`` to
``/item/N``.  ``/item/N`` (and ``/slow/N``, answered after 1.5 s) is an empty shell whose script fetches
``/api/item/N`` (JSON, optionally slow) and writes ``h1.name`` and
``span.price`` into the page.  A plain HTTP client sees none of that.
``/late/MS/N[/EXTRA]`` does the same with data that answers after MS ms, and
EXTRA adds a fetch that never ends (``never``), an EventSource stream that
stays open (``stream``) or an image (``image``, ``/picture.png``).
``/frame/N`` writes its item in a ``requestAnimationFrame`` callback (which a
hidden page never runs) and ``p#seen`` says whether the page was visible.
``/picky/MODE/N`` is ``/item/N`` for every browser but Lightpanda, which it
fails on purpose: ``stall`` runs a script that never ends, ``blank`` writes no
item, ``crash`` asks ``on_crash`` (a callable given to ``shop_site``) to kill the
browser while the page loads.
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


LATE = """<html><head><title>late</title></head><body><div id="item">loading</div>%(extra)s<script>
fetch('/api/late/%(ms)d/%(n)d').then(function (r) { return r.json(); }).then(function (d) {
  document.getElementById('item').innerHTML =
    '<h1 class="name">' + d.name + '</h1><span class="price">' + d.price + '</span>';
});
</script></body></html>"""
FRAME = """<html><head><title>frame</title></head><body><div id="item">loading</div><p id="seen"></p>
<script>
document.getElementById('seen').textContent = document.visibilityState;
requestAnimationFrame(function () {
  document.getElementById('item').innerHTML =
    '<h1 class="name">Item %(n)d</h1><span class="price">%(price)d</span>';
});
</script></body></html>"""
PICKY = """<html><head><title>picky</title></head><body><div id="item">loading</div><script>
if (navigator.userAgent.indexOf('Lightpanda') >= 0) {
  if ('%(mode)s' === 'stall') { while (true) {} }
  if ('%(mode)s' === 'crash') { fetch('/api/crash'); }
} else {
  fetch('/api/item/%(n)d').then(function (r) { return r.json(); }).then(function (d) {
    document.getElementById('item').innerHTML =
      '<h1 class="name">' + d.name + '</h1><span class="price">' + d.price + '</span>';
  });
}
</script></body></html>"""
NEVER = "<script>fetch('/api/never').then(function (r) { return r.text(); });</script>"
STREAM = "<script>new EventSource('/api/stream');</script>"
IMAGE = '<img src="/picture.png">'
EXTRAS = {"plain": "", "never": NEVER, "stream": STREAM, "image": IMAGE}


def price(n):
    return 100 + 7 * n


def shop_site(items=12, api_delay=0.0, on_crash=None):
    """A started Site; stop() it when done."""
    def route(handler, path, attempt):
        if path.startswith("/picky/"):
            mode, n = path.split("/")[2:4]
            return 200, {}, PICKY % {"mode": mode, "n": int(n)}
        if path == "/api/crash":
            if on_crash is not None:
                on_crash()
            return 200, {}, "{}"
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
        if path.startswith("/late/"):   # /late/MS/N[/EXTRA]: data fetched answers after MS ms
            ms, n, extra = (path.split("/")[2:] + ["plain"])[:3]
            return 200, {}, LATE % {"ms": int(ms), "n": int(n), "extra": EXTRAS[extra]}
        if path.startswith("/frame/"):
            n = int(path.rsplit("/", 1)[1])
            return 200, {}, FRAME % {"n": n, "price": price(n)}
        if path.startswith("/api/late/"):
            ms, n = (int(part) for part in path.split("/")[3:5])
            time.sleep(ms / 1000.0)
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"name": "Item %d" % n, "price": price(n)})
        if path in ("/api/never", "/api/stream"):
            return _never_ending(handler, path)
        if path == "/moved":
            return 302, {"Location": "/item/1", "Set-Cookie": "hop=1"}, ""
        if path == "/cookie":
            return 200, {"Set-Cookie": "session=abc; Path=/"}, "<p>%s</p>" % handler.headers.get("Cookie")
        if path == "/echo":
            return 200, {}, "<pre>%s</pre>" % json.dumps(dict(handler.headers))
        return 404, {}, "<h1>no such page</h1>"
    return Site(route).start()


def _never_ending(handler, path):
    """Answer headers (and, for the stream, one event), then never finish the body."""
    kind = "text/event-stream" if path == "/api/stream" else "text/plain"
    handler.send_response(200)
    handler.send_header("Content-Type", kind)
    handler.end_headers()
    handler.wfile.write(b"data: hello\n\n" if path == "/api/stream" else b"partial")
    handler.wfile.flush()
    # hold the answer open until the browser drops the connection (it sends nothing more on it
    # while it waits), at most 10 minutes: the thread ends with the tab, not at a fixed time
    handler.connection.settimeout(600)
    try:
        handler.rfile.read(1)
    except OSError:
        pass
    handler.close_connection = True
    return "drop"


# format with url, fault, engine (a render engine) and fallback (True/False)
SHOP_SPIDER = '''
class Shop(Spider):
    name = "shop"
    start_urls = ["{url}/"]
    render = True
    render_engine = "{engine}"
    render_fallback = {fallback}
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
