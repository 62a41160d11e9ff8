"""Throttling: a 429, or a 503 with ``Retry-After``, is the site asking us to wait, not a ban.

``Throttle`` sits beside a fetcher.  Before a request it asks the shared
cool-downs (``state/throttle.py``) whether the host is cooling down through
that proxy ("direct" is one) and raises ``Throttled`` without sending when it
is; after an answer it starts (or extends) the host's cool-down when the
answer is throttling and raises ``Throttled`` too.  The worker holds such a seed
until the cool-down ends and takes other seeds meanwhile: no pool slot sleeps.
Neither the proxy nor the session is judged by a throttling answer, and no
``--retry`` attempt is spent on it.

Policy: ``Retry-After`` (seconds or an HTTP date) is honoured up to
``--max-retry-after`` (600 s); past it the host cools for that cap and the
seed goes to the backlog.  Without ``Retry-After`` the cool-down doubles from
1 s to 60 s while 429s go on, and resets on a success::

    throttle = Throttle(SpiderState(redis, "shop").cooldowns(), cap=600)
    doubling = throttle.before("shop.example", proxy)     # Throttled if cooling
    response = send()
    throttle.after(response, "shop.example", proxy, doubling)  # Throttled if 429
"""
import email.utils
import hashlib
import time

from ..errors import Throttled

DIRECT = "direct"


def is_throttling(response):
    """A 429, or a 503 that says when to come back."""
    status = response.status_code
    return status == 429 or (status == 503 and response.headers.get("Retry-After") is not None)


def retry_after(response, now=None):
    """Seconds from `response`'s ``Retry-After`` (delta-seconds or an HTTP date), or None.

    A date is read against the answer's own ``Date`` header when it has one, so
    the server's clock is compared with itself.
    """
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return None
    base = _http_date(response.headers.get("Date") or "")
    if base is None:
        base = time.time() if now is None else now
    return max(0.0, when - base)


def _http_date(text):
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed is not None else None


def member(host, proxy):
    """The cool-down's name for `host` through `proxy` (None: direct); no password in it."""
    if proxy is None:
        return "%s|%s" % (host, DIRECT)
    return "%s|%s" % (host, hashlib.sha1(proxy.url.encode("utf-8")).hexdigest()[:12])


class Throttle:
    """Cool-downs around a fetcher's requests; `answers` counts throttling answers (for the stats)."""

    def __init__(self, cooldowns, cap=600.0, now=time.time):
        self.cooldowns, self.cap, self.now = cooldowns, cap, now
        self.answers = 0

    def before(self, host, proxy):
        """Raise Throttled while `host` cools down through `proxy`; else whether a doubling step is set."""
        left, doubling = self.cooldowns.check(member(host, proxy))
        if left > 0:
            raise Throttled("%s is cooling down for %.1fs" % (host, left), left)
        return doubling

    def after(self, response, host, proxy, doubling=False):
        """Raise Throttled (and start the cool-down) when `response` is throttling; else reset doubling."""
        name = member(host, proxy)
        if not is_throttling(response):
            if doubling:
                self.cooldowns.recover(name)
            return
        self.answers += 1
        asked = retry_after(response, self.now())
        wait = self.cooldowns.throttle(name, asked, self.cap)
        over = asked is not None and asked > self.cap
        raise Throttled("HTTP %d from %s: cooling down %.1fs%s" % (
            response.status_code, host, wait, " (Retry-After %.0fs is over --max-retry-after)" % asked
            if over else ""), wait, over_cap=over)

    def pop_answers(self):
        """Throttling answers since the last call."""
        n, self.answers = self.answers, 0
        return n
