"""Sessions in one process: pick a live session, dress its requests, keep its jar, retire it.

``--sessions N`` keeps N sessions per spider in Redis (``state.sessions``),
shared by every process.  A :class:`SessionPool` is one process's view of
them: it picks a session round-robin among those whose proxy is usable for the
host, reserves uses in blocks (one round trip per ``BLOCK`` uses, which also
brings back cookies other processes stored), and writes back only cookies that
changed.  The fetcher asks it for a session per attempt and hands it every
answer::

    pool = SessionPool(state.sessions, size=6, max_uses=50, proxies=proxy_pool)
    session = pool.take("shop.example", exclude=tried)
    response = pool.exchange(transport_request, seed, session)   # redirects followed here
    if banned:
        pool.retire(session, "banned", "shop.example")

A ban retires the session, not its proxy.  The proxy is benched (through the
ProxyPool) only when fresh sessions on it keep being banned: ``BURNT`` of the
last ``WINDOW`` sessions retired on it were banned within their first
``FRESH_USES`` uses.  Sessions are not leased, so a process that dies strands
none; a retired session is dropped by the others at their next reservation
or refresh (every ``REFRESH`` seconds).

With a ``renderer`` (``session_warmup = "render"``) a session's first page is
rendered in a browser and the browser's cookies fill its jar; with
``render_with(fetcher, every_page=True)`` (``render`` and sessions) every page is.
"""
import collections
import logging
import time
import uuid
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urljoin, urlsplit

from .errors import FetchError
from .identity import Identity, from_agent, without_owned

__all__ = ["Session", "SessionPool", "REDIRECTS"]

_log = logging.getLogger("microspider.sessions")
REDIRECTS = frozenset([301, 302, 303, 307, 308])
MAX_HOPS = 20


class Session:
    """One identity as this process knows it: proxy URL, identity, profile, jar, uses left here.

    ``identity`` is the ``microspider.identity.Identity`` every request of the
    session presents (User-Agent, platform, client hints, Accept-Language; a
    profile's own with ``impersonate``), or None: the fetcher's default.
    """

    __slots__ = ("id", "proxy", "agent", "profile", "identity", "jar", "allowance", "used",
                 "reserving", "warming", "last_block", "warmed", "maker", "leave_until")

    def __init__(self, sid, identity):
        self.id = sid
        self.proxy = identity.get("proxy")
        self.agent = identity.get("agent")
        self.profile = identity.get("profile")
        if identity.get("identity"):
            self.identity = Identity.from_dict(identity["identity"])
        else:   # made by a process of 0.3: a User-Agent alone
            self.identity = from_agent(self.agent) if self.agent else None
        self.jar = {}           # (domain, name) -> value
        self.allowance = 0      # uses reserved by this process and not yet spent
        self.used = 0           # uses of the session everywhere, as far as this process knows
        self.reserving = False  # a reservation round trip is under way
        self.warming = False    # a request with an empty jar is under way (it may earn cookies)
        self.last_block = False  # the allowance holds the session's last uses
        self.warmed = bool(identity.get("warmed"))  # it earned its first cookies (with
        # ``session_warmup``: a browser rendered its first page)
        self.maker = identity.get("by")  # the process that made it (and earns its first cookies)
        self.leave_until = 0.0  # another process's new session: left to it until then

    def cookies_for(self, host):
        """{name: value} of the jar's cookies that `host` may receive.

        A domain cookie is kept as ".example.com" (sent to its subdomains too),
        a host-only cookie as "example.com" (sent to that host only).
        """
        return {name: value for (domain, name), value in self.jar.items()
                if host == domain.lstrip(".") or (domain[:1] == "." and host.endswith(domain))}

    def dress(self, seed):
        """`seed` as this session sends it: its identity's headers, its cookies under the seed's own.

        A profile's identity adds no header: the impersonating fetcher sends the
        profile's own, in its order and spelling.
        """
        host = urlsplit(seed.url).hostname or ""
        headers = seed.headers
        if self.identity is not None and not self.identity.profile:
            headers = dict(without_owned(seed.headers), **self.identity.headers())
        cookies = dict(self.cookies_for(host), **seed.cookies)
        return seed.replace(headers=headers, cookies=cookies)


class SessionPool:
    """This process's side of the spider's sessions (see the module docstring)."""

    BLOCK = 10          # uses reserved per round trip
    REFRESH = 2.0       # seconds between reads of the live set
    FRESH_USES = 3      # a session banned within this many uses counts against its proxy
    WINDOW = 4          # retired sessions remembered per proxy
    BURNT = 3           # of those, fresh bans that bench the proxy
    WAIT = 0.01         # seconds between looks for a session another greenlet is reserving

    def __init__(self, store, size, max_uses, proxies=None, agents=(), profile=None, renderer=None,
                 patience=5.0, now=time.monotonic, sleep=time.sleep, log=_log, language=None):
        """`renderer`: a browser fetcher with ``warm`` (``session_warmup = "render"``);
        `patience`: seconds take() waits for a session busy in another greenlet;
        `language`: the Accept-Language of identities made from `agents`."""
        self.store = store
        self.size = size
        self.max_uses = max_uses
        # a process that dies loses the uses it reserved: a block stays a small share of a session
        self.block = max(1, min(self.BLOCK, max_uses // 4))
        self.proxies = proxies
        self.agents = list(agents or ())
        self.profile = profile
        self.language = language
        self.renderer = renderer
        self.render_all = False   # every page in the browser (``render`` with sessions)
        self.patience = patience
        self.navigations = 0      # first pages rendered by the browser (warm-ups)
        self._now, self._sleep, self.log = now, sleep, log
        self._sessions = {}       # id -> Session
        self._order = []          # ids, in the order take() walks them
        self._cursor = 0
        self._refreshed = None
        self._made = 0            # identities made by this process (rotates agents)
        self._history = {}        # proxy url -> deque of "banned fresh" flags
        self._token = uuid.uuid4().hex[:8]   # this process, in the identities it makes

    # -- taking ----------------------------------------------------------------------
    def take(self, host, exclude=()):
        """A live session usable for `host` whose id is not in `exclude`, one use spent; or None.

        A session whose first request (the one that earns its cookies) is under
        way here is taken only when no other is free, so one grant serves all.
        Waits briefly while the only candidates are being reserved by other greenlets.
        """
        for _ in range(max(1, int(self.patience / self.WAIT))):
            self._refresh_if_due(host)
            order = self._order
            session, busy = self._pick(host, exclude, warming=False)
            if session is None:
                session, busy = self._pick(host, exclude, warming=True)
            if session is not None:
                return session
            if self._order != order:
                continue            # sessions were retired and replaced meanwhile: try the new ones
            stuck = self._stuck_on_benched_proxy(host, exclude)
            if stuck is not None:   # make room for a session on a proxy that works for this host
                self.retire(stuck, "proxy benched", host)
                continue
            if not busy:
                return None
            self._sleep(self.WAIT)
        return None

    def _stuck_on_benched_proxy(self, host, exclude):
        """A session whose proxy is benched for `host` while another proxy is not, or None."""
        if self.proxies is None or not any(self.proxies.is_ready(p, host) for p in self.proxies.proxies):
            return None
        return next((s for s in list(self._sessions.values())
                     if s.id not in exclude and not self._proxy_ready(s, host)), None)

    def _pick(self, host, exclude, warming):
        """(a session, one use spent, or None; whether some candidate was being reserved)."""
        order = list(self._order)
        busy = False
        for step in range(len(order)):
            session = self._sessions.get(order[(self._cursor + step) % len(order)])
            if session is None or session.id in exclude:
                continue
            if session.reserving or (warming and self._rendering(session)):
                busy = True
                continue
            if warming and self.renderer is not None and self._left_to_maker(session):
                busy = True         # wait for its maker's browser rather than render it twice
                continue
            if not warming and (session.warming or self._left_to_maker(session)):
                continue
            if not self._proxy_ready(session, host):
                continue
            if session.allowance <= 0 and session.last_block:
                self.retire(session, "used up", host)   # no need to ask: the uses are all spent
                continue
            if session.allowance <= 0 and not self._reserve(session, host):
                continue
            self._cursor = (self._cursor + step + 1) % max(1, len(self._order))
            session.allowance -= 1
            session.used += 1
            session.warming = session.warming or not session.jar or (
                self.renderer is not None and not session.warmed)
            return session, busy
        return None, busy

    def _left_to_maker(self, session):
        """True for another process's new session, while its maker earns the first cookies."""
        return not session.warmed and session.leave_until > self._now()

    def _rendering(self, session):
        """True while a browser renders the session's first page: wait for its cookies."""
        return session.warming and self.renderer is not None and not session.warmed

    def _proxy_ready(self, session, host):
        return session.proxy is None or self.proxies is None or self.proxies.is_ready(session.proxy, host)

    def _reserve(self, session, host):
        """Reserve a block of uses for `session`; False if it is retired or used up."""
        session.reserving = True
        try:
            found = self.store.reserve(session.id, self.block, self.max_uses)
        finally:
            session.reserving = False
        if found is None:            # retired by another process: learn the live set now
            self._drop(session.id)
            self._sync(host)
            return False
        session.jar.update(found.jar)
        session.warmed = session.warmed or found.warmed
        session.used = found.before
        if found.granted <= 0:
            self.retire(session, "used up", host)
            return False
        session.allowance = found.granted
        session.last_block = found.before + found.granted >= self.max_uses
        return session.id in self._sessions

    # -- the live set ------------------------------------------------------------------
    def _refresh_if_due(self, host):
        now = self._now()
        if self._refreshed is not None and now - self._refreshed < self.REFRESH:
            return
        self._refreshed = now
        self._sync(host)
        if self.proxies is not None:
            known = {p.url for p in self.proxies.proxies}
            for session in list(self._sessions.values()):
                if session.proxy is not None and session.proxy not in known:
                    self.retire(session, "proxy dropped", host)

    def _sync(self, host, retire=None):
        """One round trip: retire `retire`, fill the pool up to `size`, adopt the live set."""
        missing = self.size - len(self._sessions) + (1 if retire else 0)
        live_proxies = [s.proxy for s in self._sessions.values() if s.id != retire]
        new = [self._identity(host, live_proxies) for _ in range(max(0, missing))]
        retired, live = self.store.sync(self.size, retire, new)
        self._adopt(live)
        return retired

    def _identity(self, host, live_proxies):
        """(id, identity) of a new session: the least used usable proxy, the next identity."""
        identity = {"proxy": self._least_used_proxy(host, live_proxies), "by": self._token}
        made = self._next_identity()
        if made is not None:
            identity["identity"] = made.to_dict()
            if not made.profile:
                identity["agent"] = made.agent
        if self.profile:
            identity["profile"] = self.profile
        self._made += 1
        live_proxies.append(identity["proxy"])
        return uuid.uuid4().hex[:16], identity

    def _next_identity(self):
        """The profile's own identity, else the next User-Agent's, else the browser's own, else None."""
        if self.profile:
            from .transport.impersonate import profile_identity

            return profile_identity(self.profile)
        if self.agents:
            return from_agent(self.agents[self._made % len(self.agents)], self.language)
        if self.renderer is not None:   # the browser earns the cookies: the fetcher must look like it
            try:
                return self.renderer.own_identity()
            except FetchError as exc:   # no browser now: its pages fail and retry as any fetch
                self.log.warning("session identity: cannot read the browser's own: %s", exc)
        return None

    def _least_used_proxy(self, host, live_proxies):
        if self.proxies is None or not len(self.proxies):
            return None
        urls = [p.url for p in self.proxies.proxies]
        ready = [u for u in urls if self.proxies.is_ready(u, host)] or urls
        load = collections.Counter(live_proxies)
        return min(ready, key=lambda u: (load[u], (urls.index(u) - self._made) % len(urls)))

    def _adopt(self, live):
        for sid, identity in live.items():
            session = self._sessions.get(sid)
            if session is None:
                session = self._sessions[sid] = Session(sid, identity)
                if session.maker != self._token:   # its maker is earning its cookies: not twice
                    session.leave_until = self._now() + self.patience
            session.warmed = session.warmed or bool(identity.get("warmed"))
        for sid in [s for s in self._sessions if s not in live]:
            del self._sessions[sid]
        self._order = list(live)

    def _drop(self, sid):
        self._sessions.pop(sid, None)

    # -- outcomes ----------------------------------------------------------------------
    def retire(self, session, reason, host=None):
        """Retire `session` everywhere (``banned``, ``used up``, ``proxy dropped``) and refill."""
        self._drop(session.id)
        if session.proxy is not None and self.proxies is not None:
            self._judge_proxy(session, reason == "banned", host)
        if self._sync(host, retire=session.id):
            self.log.debug("session %s retired (%s) after %d uses", session.id, reason, session.used)

    def _judge_proxy(self, session, banned, host):
        history = self._history.setdefault(session.proxy, collections.deque(maxlen=self.WINDOW))
        history.append(banned and session.used <= self.FRESH_USES)
        if sum(history) >= self.BURNT:
            history.clear()
            self.proxies.bench(session.proxy, host)
            self.log.info("proxy benched for %s: fresh sessions through it keep being banned", host)

    def absorb(self, session, response, host):
        """Merge the cookies an answer set into the session's jar; store those that changed."""
        changed = {}
        for domain, name, value in _set_cookies(response, host):
            key = (domain, name)
            if session.jar.get(key) != value:
                changed[key] = value
                if value is None:
                    session.jar.pop(key, None)
                else:
                    session.jar[key] = value
        if not changed:
            return
        if self.store.save_cookies(session.id, changed, warmed=not session.warmed):
            session.warmed = True   # its first cookies: other processes stop leaving it to us
        else:
            self._drop(session.id)

    def exchange(self, request, seed, session):
        """Fetch `seed` in `session` with `request(seed, proxy)`, following redirects here.

        Each hop carries the session's identity and the jar as it stands after
        the previous hop, so a cookie set by a 302 is sent on the next request.
        """
        if self.renderer is not None and (self.render_all or not session.warmed):
            return self._in_browser(seed, session)
        proxy = self.proxy_of(session)
        hop = session.dress(seed)
        try:
            for _ in range(MAX_HOPS + 1):
                response = request(hop, proxy)
                host = urlsplit(hop.url).hostname or ""
                self.absorb(session, response, host)
                location = response.headers.get("Location")
                if response.status_code not in REDIRECTS or not location:
                    response.session = session.id
                    return response
                hop = session.dress(_next_hop(seed, hop, response.status_code, location))
        finally:
            session.warming = False
        raise FetchError("%s: more than %d redirects" % (seed.url, MAX_HOPS))

    def render_with(self, renderer, every_page=False):
        """Render a session's first page (or, `every_page`, all of them) with `renderer`."""
        self.renderer, self.render_all = renderer, every_page

    def _in_browser(self, seed, session):
        """A page of the session rendered by the browser; the cookies the browser holds go to the jar."""
        try:
            response, cookies = self.renderer.warm(session.dress(seed), self.proxy_of(session),
                                                   identity=session.identity)
        finally:
            session.warming = False
        self.navigations += 1
        earned = {(c["domain"].lower(), c["name"]): c["value"] for c in cookies}
        changed = {key: value for key, value in earned.items() if session.jar.get(key) != value}
        session.jar.update(earned)
        session.warmed = True
        if not self.store.save_cookies(session.id, changed, warmed=True):
            self._drop(session.id)
        response.session = session.id
        return response

    def close(self):
        """Close the browser of the warm-ups, if any (a rendering fetcher closes itself)."""
        if self.renderer is not None and not self.render_all:
            self.renderer.close()

    def proxy_of(self, session):
        """The Proxy object of a session's proxy URL (None: direct)."""
        if session.proxy is None:
            return None
        return self.proxies.get(session.proxy) if self.proxies is not None else None


def _next_hop(seed, hop, status, location):
    """The seed of the request a redirect asks for (a POST becomes a GET on 301/302/303)."""
    url = urljoin(hop.request_url(), location)
    if status == 303 or (status in (301, 302) and hop.method == "POST"):
        return seed.replace(url=url, query={}, method="GET", data=None)
    return seed.replace(url=url, query={}, method=hop.method, data=hop.data)


def _set_cookies(response, host):
    """(domain, name, value or None when deleted) of each cookie an answer sets."""
    values = response.__dict__.get("_set_cookie")  # every Set-Cookie line, kept by make_response
    if values is None:
        values = [response.headers["Set-Cookie"]] if "Set-Cookie" in response.headers else []
    for line in values:
        parsed = SimpleCookie()
        try:
            parsed.load(line)
        except CookieError:
            continue
        for name, morsel in parsed.items():
            domain = "." + morsel["domain"].lstrip(".").lower() if morsel["domain"] else host
            gone = morsel["max-age"] not in ("", None) and _int(morsel["max-age"]) <= 0
            yield domain, name, None if gone else morsel.value


def _int(text):
    try:
        return int(text)
    except ValueError:
        return 1
