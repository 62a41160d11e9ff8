"""A local site that grants a session cookie and defends it, for the session tests.

- ``/item/N`` without the cookie: 302 to ``/grant?to=/item/N``;
- ``/grant?to=PATH``: sets ``sid=TOKEN``, bound to the client's IP (the proxy's
  source address) and User-Agent, and 302 back to PATH (``SessionRules.tls_route``
  binds it to the TLS fingerprint and User-Agent instead, on ``tests/tls_site.py``;
  ``SessionRules.ip_route`` to the IP and User-Agent there);
- a cookie presented from another IP or User-Agent: 403, and the token is
  revoked (a hijacked session), counted in ``crossings``;
- a revoked or unknown token: 403;
- a token that served ``max_uses`` pages: a 200 "Blocked" page, the way hostile
  sites answer (the spider's ``is_banned`` must see it);
- otherwise the page, counted against the token.

With ``challenge=True`` a visit without the cookie gets instead a 200 page
whose script sets it and reloads (what JavaScript challenges do): only a
browser gets through.  ``navigations`` counts the requests a browser made
(they carry ``Upgrade-Insecure-Requests``, which plain clients do not send).

``grants``, ``pages`` (real pages served), ``crossings``, ``refused`` (answers
to revoked, unknown or used-up tokens) and ``tokens`` ({token: Grant}) say
what happened.
"""
import secrets
import threading
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from tests.servers import Site

BLOCKED = b"<html><title>Blocked</title><body>Blocked: your session has expired</body></html>"
CHALLENGE = ("<html><head><title>Checking your browser</title></head><body>Checking your browser"
             "<script>document.cookie = 'sid=%s; path=/'; location.reload();</script></body></html>")


# pre_shared_key and early_data: only in the hello of a resumed TLS session, which a client's own
# later connections are; a WAF that binds a cookie to a fingerprint leaves them out
RESUMPTION = frozenset([41, 42])


def tls_identity(hello):
    """A client's TLS identity as the site binds cookies to it: family, ciphers, other extensions."""
    return (hello.family(), tuple(sorted(hello.ciphers)), tuple(sorted(set(hello.extensions) - RESUMPTION)))


class Grant:
    """One cookie the site handed out: to which identity, and how many pages it served."""

    __slots__ = ("identity", "pages", "revoked")

    def __init__(self, identity):
        self.identity, self.pages, self.revoked = identity, 0, False


class SessionRules:
    """What the site answers, whatever carries the requests; `identity` is what a cookie is bound to."""

    def __init__(self, max_uses=20, challenge=False):
        self.max_uses = max_uses
        self.challenge = challenge
        self.tokens = {}
        self.grants = self.pages = self.crossings = self.refused = self.navigations = 0
        self.lock = threading.Lock()

    def identities(self):
        """The identities that were granted a cookie."""
        with self.lock:
            return {g.identity for g in self.tokens.values()}

    def answer(self, identity, path, cookie_header):
        """(status, [(name, value)], body) of one request."""
        cookie = SimpleCookie(cookie_header or "")
        token = cookie["sid"].value if "sid" in cookie else None
        parts = urlsplit(path)
        if parts.path == "/grant":
            return self._grant(identity, parse_qs(parts.query).get("to", ["/"])[0])
        if not parts.path.startswith("/item/"):
            return 404, [], b"not found"
        if token is None and self.challenge:
            return 200, [], (CHALLENGE % self._new_token(identity)).encode()
        if token is None:
            return 302, [("Location", "/grant?to=" + parts.path)], b""
        with self.lock:
            return self._serve(self.tokens.get(token), identity, parts.path)

    def _grant(self, identity, back):
        token = self._new_token(identity)
        return 302, [("Set-Cookie", "sid=%s; Path=/; HttpOnly" % token), ("Location", back)], b""

    def _new_token(self, identity):
        token = secrets.token_hex(8)
        with self.lock:
            self.tokens[token] = Grant(identity)
            self.grants += 1
        return token

    def _serve(self, grant, identity, path):
        if grant is None or grant.revoked:
            self.refused += 1
            return 403, [], b"forbidden: unknown or revoked session"
        if grant.identity != identity:
            grant.revoked = True
            self.crossings += 1
            self.refused += 1
            return 403, [], b"forbidden: this session belongs to someone else"
        if grant.pages >= self.max_uses:
            self.refused += 1
            return 200, [], BLOCKED
        grant.pages += 1
        self.pages += 1
        return 200, [], ("<html><h1>%s</h1></html>" % path).encode()

    def ip_route(self, visit):
        """A ``tests.tls_site.TLSSite`` route: cookies bound to the client's IP and User-Agent
        (a browser-class TLS hello required by the site itself), as WAFs bind clearance cookies."""
        cookie = next((v for k, v in visit.headers if k.lower() == "cookie"), None)
        status, headers, body = self.answer((visit.hello.ip, visit.agent), visit.path, cookie)
        return status, headers + [("content-type", "text/html")], body

    def tls_route(self, visit):
        """A ``tests.tls_site.TLSSite`` route: cookies bound to the TLS fingerprint and User-Agent."""
        cookie = next((v for k, v in visit.headers if k.lower() == "cookie"), None)
        status, headers, body = self.answer((tls_identity(visit.hello), visit.agent), visit.path, cookie)
        return status, headers + [("content-type", "text/html")], body


class SessionSite(SessionRules):
    """The rules over plain HTTP on 127.0.0.1, cookies bound to (client IP, User-Agent)."""

    def __init__(self, max_uses=20, challenge=False):
        super().__init__(max_uses, challenge)
        self.http = Site(self._route)

    @property
    def url(self):
        return self.http.url

    def start(self):
        self.http.start()
        return self

    def stop(self):
        self.http.stop()

    def ips(self):
        """The client IPs that were granted a cookie."""
        return {ip for ip, _ in self.identities()}

    def _route(self, handler, path, attempt):
        if handler.headers.get("Upgrade-Insecure-Requests"):
            with self.lock:
                self.navigations += 1
        identity = (handler.client_address[0], handler.headers.get("User-Agent"))
        status, headers, body = self.answer(identity, path, handler.headers.get("Cookie"))
        return status, dict(headers), body
