"""libcurl's multi interface on the gevent loop: ``CurlLoop.perform(handle)`` per greenlet.

libcurl tells us which sockets to watch and when to wake it (its socket and
timer callbacks); gevent io watchers and a gevent timer do the watching and
call ``socket_action`` back.  Each greenlet adds its easy handle and waits on
its own ``Waiter`` until libcurl reports that transfer done, so a slow server
blocks only the greenlet that asked for it.

The callbacks run inside gevent's hub: they never block and never raise
(errors are recorded in ``CurlLoop.errors`` and fail the waiting transfers);
the only switch they make is to wake a finished transfer, after libcurl has
returned.  A handle leaves the multi in a ``finally``, so a gevent Timeout or
a kill during a transfer never leaves it there.

The multi handle itself is a small adapter over one libcurl's multi socket
interface: ``PycurlMulti`` (pycurl, for ``--fetcher curl``) here, ``CffiMulti``
(curl_cffi's libcurl, for ``--impersonate``) in ``transport.impersonate``.
Both libcurls use the same numbers for options, events and errors.
"""
import logging
import time

from gevent.hub import Waiter, get_hub

log = logging.getLogger("microspider")
# libcurl's numbers (curl/multi.h, curl/curl.h), the same in every libcurl
POLL_REMOVE = 4
CSELECT_ERR = 4
SOCKET_TIMEOUT = -1
E_OPERATION_TIMEDOUT = 28
INFO_PRETRANSFER_TIME_T = 0x600000 + 53
INFO_SIZE_DOWNLOAD_T = 0x600000 + 8
INFO_HEADER_SIZE = 0x200000 + 11


class _Transfer:
    """A transfer in the multi: its greenlet's Waiter and when a byte last arrived."""

    __slots__ = ("waiter", "received", "quiet_since")

    def __init__(self, waiter, now):
        self.waiter, self.received, self.quiet_since = waiter, -1, now


class CurlLoop:
    """One CurlMulti whose sockets and timer are watched by the gevent loop of this thread.

    ``idle_timeout``: a transfer whose connection is made (libcurl's own
    connect timeout covers the rest) and which receives no byte for that many
    seconds fails; a sweep every ``idle_timeout / 4`` (at most 1 s) checks.
    """

    def __init__(self, max_connections=64, idle_timeout=20.0, hub=None, now=time.monotonic,
                 multi=None):
        self.hub = hub or get_hub()
        self.loop = self.hub.loop
        self.now = now
        self.idle_timeout = idle_timeout
        period = min(1.0, idle_timeout / 4.0)
        self._sweeper = self.loop.timer(period, period)
        self.multi = (multi or PycurlMulti)(self._on_socket, self._on_timer, max_connections)
        self.errors = []        # exceptions caught inside the hub's callbacks (the last 20)
        self._watchers = {}     # fd -> gevent io watcher
        self._timer = None
        self._transfers = {}    # easy handle in the multi -> _Transfer
        self.closed = False

    @property
    def handles(self):
        """How many easy handles are in the multi now."""
        return len(self._transfers)

    def perform(self, handle):
        """Run one transfer to its end, blocking only the calling greenlet; (errno, message)."""
        waiter = Waiter(self.hub)
        self._transfers[handle] = _Transfer(waiter, self.now())
        if not self._sweeper.active:
            self._sweeper.start(self._sweep)
        try:
            self.multi.add_handle(handle)
            try:
                return waiter.get()
            finally:
                if not self.closed:
                    self.multi.remove_handle(handle)  # also when a Timeout or kill lands in get()
        finally:
            del self._transfers[handle]
            if not self._transfers:
                self._sweeper.stop()

    def close(self):
        """Fail what is still in the multi (its greenlets wake with an error), then free it all."""
        if self.closed:
            return
        self.closed = True
        self._sweeper.stop()
        for handle, transfer in list(self._transfers.items()):
            self.multi.remove_handle(handle)
            self.loop.run_callback(transfer.waiter.switch, (-1, "the fetcher was closed"))
        for watcher in self._watchers.values():
            watcher.stop()
        self._watchers.clear()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.multi.close()

    # -- inside the hub: never block, switch (except to wake a finished transfer) or raise ----
    def _on_socket(self, what, fd, multi, data):
        try:
            events = what & 3      # CURL_POLL_IN/OUT are gevent's READ/WRITE bits
            watcher = self._watchers.get(fd)
            if watcher is not None:
                if what != POLL_REMOVE and watcher.events == events:
                    return
                watcher.stop()
                del self._watchers[fd]
            if what != POLL_REMOVE and events:
                watcher = self._watchers[fd] = self.loop.io(fd, events)
                watcher.start(self._on_io, fd, pass_events=True)
        except BaseException as exc:  # noqa: B902 - an exception here would unwind the hub
            self._failed("socket callback", exc)

    def _on_timer(self, ms):
        try:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            if ms >= 0:
                self._timer = self.loop.timer(ms / 1000.0)
                self._timer.start(self._on_timeout)
        except BaseException as exc:  # noqa: B902
            self._failed("timer callback", exc)

    def _on_io(self, events, fd):
        mask = events & 3
        if events & ~3 or not mask:
            mask |= CSELECT_ERR
        self._act(fd, mask)

    def _on_timeout(self):
        self._timer = None
        self._act(SOCKET_TIMEOUT, 0)

    def _act(self, fd, mask):
        try:
            self.multi.socket_action(fd, mask)
            finished = self.multi.finished()
        except BaseException as exc:  # noqa: B902
            self._failed("socket_action", exc)
            return
        for handle, errno, message in finished:
            self._wake(handle, (errno, message))

    def _sweep(self):
        """Fail the transfers that received nothing for ``idle_timeout`` seconds."""
        try:
            now, stale = self.now(), []
            for handle, transfer in self._transfers.items():
                if not handle.getinfo_raw(INFO_PRETRANSFER_TIME_T):
                    continue  # still connecting: CONNECTTIMEOUT_MS bounds that
                received = (handle.getinfo_raw(INFO_SIZE_DOWNLOAD_T)
                            + handle.getinfo_raw(INFO_HEADER_SIZE))
                if received != transfer.received:
                    transfer.received, transfer.quiet_since = received, now
                elif now - transfer.quiet_since >= self.idle_timeout:
                    stale.append(handle)
        except BaseException as exc:  # noqa: B902
            self._failed("idle sweep", exc)
            return
        for handle in stale:
            self._wake(handle, (E_OPERATION_TIMEDOUT,
                                "no byte received for %g s" % self.idle_timeout))

    def _wake(self, handle, outcome):
        transfer = self._transfers.get(handle)
        if transfer is None:
            return  # its greenlet was killed and took the handle out already
        try:
            transfer.waiter.switch(outcome)
        except BaseException as exc:  # noqa: B902
            self._failed("waking a transfer", exc)

    def _failed(self, where, exc):
        """Record a callback's exception and fail every waiting transfer, so none hangs.

        The wake-ups are scheduled, not made here: this may run inside a pycurl
        call, or in a greenlet (libcurl calls back from add_handle/remove_handle).
        """
        self.errors = self.errors[-19:] + [(where, exc)]
        log.error("libcurl %s failed: %r; failing %d transfers", where, exc, len(self._transfers))
        outcome = (-1, "internal error in the %s: %r" % (where, exc))
        for transfer in self._transfers.values():
            self.loop.run_callback(transfer.waiter.switch, outcome)


class PycurlMulti:
    """pycurl's CurlMulti as CurlLoop drives it (TLS sessions are shared per session key, by the fetcher)."""

    def __init__(self, on_socket, on_timer, max_connections):
        import pycurl

        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
        self.multi.setopt(pycurl.M_MAXCONNECTS, max_connections)
        self.add_handle = self.multi.add_handle
        self.remove_handle = self.multi.remove_handle
        self.socket_action = self.multi.socket_action

    def finished(self):
        """[(handle, errno, message)] of the transfers libcurl reports done since last asked."""
        finished = []
        while True:
            queued, done, failed = self.multi.info_read()
            finished.extend((handle, 0, None) for handle in done)
            finished.extend(failed)
            if not queued:
                return finished

    def close(self):
        self.multi.close()
