"""The Redis side of a spider's session pool: live sessions, their use counts and cookie jars.

A session is an identity (proxy, User-Agent or impersonation profile) plus a
cookie jar and a use count, shared by every process of the spider.  Nothing
is leased: any process may use any live session at the same time as another,
so a process that dies strands nothing.  The pool stays at most ``size`` live
sessions because only the ``SESSIONS_SYNC`` script adds one, and only while
fewer are live.  Uses are reserved in blocks (``SESSION_RESERVE``), one round
trip per block, which also brings back the jar other processes wrote; a
process writes only the cookies that changed (``SESSION_COOKIES``).

Keys (all on the spider's hash tag): ``sessions`` (id -> identity JSON) and
``session:ID`` (``uses`` and the jar); ``sessions_retired`` is a counter of
the ``stats`` hash.  ``crawl``-side policy lives in ``microspider.sessions``.
"""
import json

from . import keys
from .scripts import SESSION_COOKIES, SESSION_RESERVE, SESSIONS_SYNC

__all__ = ["SessionStore", "Reservation", "cookie_field", "split_field"]

USES, WARMED = b"uses", b"warmed"   # the session hash's fields that are not cookies


def cookie_field(domain, name):
    """The hash field of a cookie in a session's jar."""
    return "%s\t%s" % (domain, name)


def split_field(field):
    """(domain, name) of a jar field (text or bytes)."""
    text = field.decode("utf-8", "replace") if isinstance(field, bytes) else field
    domain, _, name = text.partition("\t")
    return domain, name


class Reservation:
    """What a reservation answered: uses granted, uses reserved before, the jar {(domain, name): value},
    and whether a browser has warmed the session up (``session_warmup``)."""

    __slots__ = ("granted", "before", "jar", "warmed")

    def __init__(self, granted, before, jar, warmed=False):
        self.granted, self.before, self.jar, self.warmed = granted, before, jar, warmed


class SessionStore:
    """The sessions of spider `name` in Redis (`client`: its work connection)."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        self.live_key = keys.sessions(name)
        self.stats_key = keys.stats(name)
        self.prefix = keys.session(name, "")
        self._sync = client.register_script(SESSIONS_SYNC)
        self._reserve = client.register_script(SESSION_RESERVE)
        self._cookies = client.register_script(SESSION_COOKIES)
        self.round_trips = 0  # calls made (one round trip each), read by pop_round_trips

    def sync(self, size, retire=None, new=()):
        """Retire `retire` (an id), add `new` [(id, identity dict)] while fewer than `size` are live.

        Returns (retired: True if this call removed it, {id: identity} of the live sessions).
        """
        self.round_trips += 1
        args = [int(size), self.prefix, retire or ""]
        for sid, identity in new:
            args += [sid, json.dumps(identity, sort_keys=True)]
        retired, flat = self._sync(keys=[self.live_key, self.stats_key], args=args)
        return bool(retired), _identities(flat)

    def reserve(self, sid, block, max_uses):
        """Reserve up to `block` uses of session `sid`: a Reservation, or None if it is retired."""
        self.round_trips += 1
        found = self._reserve(keys=[self.live_key, self.prefix + sid], args=[sid, int(block), int(max_uses)])
        if not found:
            return None
        granted, before, flat = found
        fields = dict(zip(flat[::2], flat[1::2]))
        jar = {split_field(k): v.decode("utf-8", "replace") for k, v in fields.items()
               if k not in (USES, WARMED)}
        return Reservation(int(granted), int(before), jar, WARMED in fields)

    def save_cookies(self, sid, changed, warmed=False):
        """Write {(domain, name): value or None (deleted)} to a live session's jar; False if retired.

        `warmed` also marks the session as warmed up by a browser."""
        self.round_trips += 1
        args = [sid, "1" if warmed else "0"]
        for (domain, name), value in changed.items():
            args += [cookie_field(domain, name), value or ""]
        return bool(self._cookies(keys=[self.live_key, self.prefix + sid], args=args))

    def pop_round_trips(self):
        """Round trips made since the last call (the worker adds them to the ``stats`` counters)."""
        made, self.round_trips = self.round_trips, 0
        return made

    def live(self):
        """{id: identity} of the live sessions."""
        return {k.decode(): json.loads(v) for k, v in self.client.hgetall(self.live_key).items()}

    def count(self):
        """How many sessions are live."""
        return self.client.hlen(self.live_key)

    def all_keys(self):
        """Every key of the pool (for ``clear``)."""
        found = self.client.scan_iter(match=self.prefix + "*", count=1000)
        return [self.live_key] + list(found)


def _identities(flat):
    return {k.decode(): json.loads(v) for k, v in zip(flat[::2], flat[1::2])}
