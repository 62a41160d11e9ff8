"""A small Chrome DevTools Protocol client: one websocket to the browser, many tab sessions.

Commands go out on one websocket (``Connection.send``) and wait for their
answer with a deadline, so a browser that hangs costs at most that deadline.
One reader (a thread; a greenlet in a gevent-patched worker) takes every
message off the socket: answers wake their caller, events go to the listener
of their session (a tab), in order.  When the socket breaks (the browser died)
every caller waiting and every later command gets ``BrowserGone``.

Flattened sessions (``Target.attachToTarget`` with ``flatten``) let every tab
share the one socket: a tab's commands carry its ``sessionId``.
"""
import itertools
import json
import socket
import threading

from ..errors import FetchError


class BrowserGone(FetchError):
    """The browser died, closed its socket, or did not answer a command in time."""


class CommandFailed(FetchError):
    """The browser answered a command with an error (the browser itself is fine)."""


class Connection:
    """One DevTools websocket; ``send`` a command, ``listen`` to a session's events."""

    def __init__(self, url, timeout):
        import websocket

        self.timeout = timeout
        try:
            self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True,
                                                  enable_multithread=True)
        except Exception as exc:   # refused, handshake failed or timed out: no usable browser
            raise BrowserGone("cannot open the DevTools socket: %s" % (exc or type(exc).__name__)) from None
        self.ws.settimeout(None)   # the reader waits for events as long as the browser lives
        self.ids = itertools.count(1)
        self.waiting = {}          # command id -> [threading.Event, answer]
        self.listeners = {}        # sessionId -> callable(method, params)
        self.gone = None           # why the socket is unusable, once it is
        self.reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self.reader.start()

    def send(self, method, params=None, session=None, timeout=None):
        """The result of ``method``; CommandFailed if the browser refused, BrowserGone if it died."""
        slot = [threading.Event(), None]
        ident = self._post(method, params, session, slot)
        if not slot[0].wait(self.timeout if timeout is None else timeout):
            self.waiting.pop(ident, None)
            raise BrowserGone("the browser did not answer %s in time" % method)
        answer = slot[1]
        if answer is None:   # the reader saw the socket break
            raise BrowserGone(self.gone)
        if "error" in answer:
            raise CommandFailed("%s: %s" % (method, answer["error"].get("message", answer["error"])))
        return answer.get("result", {})

    def post(self, method, params=None, session=None):
        """Send ``method`` without waiting for its answer (safe from an event listener)."""
        self._post(method, params, session, None)

    def _post(self, method, params, session, slot):
        if self.gone:
            raise BrowserGone(self.gone)
        ident = next(self.ids)
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        if slot is not None:
            self.waiting[ident] = slot
        try:
            self.ws.send(json.dumps(message))
        except Exception as exc:   # the socket broke under us: the browser is gone
            self.waiting.pop(ident, None)
            raise BrowserGone("browser socket: %s" % (exc or type(exc).__name__)) from None
        return ident

    def listen(self, session, listener):
        """Call ``listener(method, params)`` for each event of ``session`` (None: forget it).

        ``listener(None, {})`` is its last call when the browser goes away.
        """
        if listener is None:
            self.listeners.pop(session, None)
        else:
            self.listeners[session] = listener

    def _read(self):
        try:
            while True:
                self._dispatch(json.loads(self.ws.recv()))
        except Exception as exc:   # closed, reset, or garbage: the browser is gone either way
            self.gone = "the browser closed its DevTools socket (%s)" % (
                str(exc) or type(exc).__name__)
        for slot in list(self.waiting.values()):
            slot[0].set()
        self.waiting.clear()
        for listener in list(self.listeners.values()):
            listener(None, {})   # a session's waiter must not sit out its deadline

    def _dispatch(self, message):
        if "id" in message:
            slot = self.waiting.pop(message["id"], None)
            if slot is not None:
                slot[1] = message
                slot[0].set()
            return
        listener = self.listeners.get(message.get("sessionId"))
        if listener is not None:
            listener(message["method"], message.get("params") or {})

    def close(self):
        self.gone = self.gone or "closed"
        sock = self.ws.sock
        if sock is not None:   # no closing handshake: the reader may be inside recv()
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes the reader, unlike close()
            except OSError:
                pass
        self.ws.shutdown()
