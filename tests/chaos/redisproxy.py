"""A byte-for-byte TCP proxy to Redis that can lose the reply of one ``take``.

Redis runs the command; the client only sees its connection closed, as when a
Redis shutting down gracefully closes connections before the replies of the
last commands it ran were written.  ``arm()`` makes the proxy do that to the
next take (the work-queue Lua script of microspider.queues) that moved seeds.
"""
import hashlib
import socket
import threading

from microspider.state.scripts import TAKE

TAKE_SHA = hashlib.sha1(TAKE.encode("utf-8")).hexdigest().encode()


class ReplyDropper:
    """Forward 127.0.0.1:<port> to a local Redis; ``arm()`` loses the next non-empty take reply."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="reply-dropper").start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def arm(self):
        self.armed.set()

    def stop(self):
        self._stop.set()
        self.sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                continue
            upstream.settimeout(None)
            pending = threading.Event()   # this client's last request was a take
            threading.Thread(target=self._requests, args=(client, upstream, pending), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, pending), daemon=True).start()

    def _requests(self, client, upstream, pending):
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if TAKE_SHA in data or TAKE.encode() in data:
                    pending.set()
                else:
                    pending.clear()
                upstream.sendall(data)
        except OSError:
            pass
        _close(client, upstream)

    def _replies(self, upstream, client, pending):
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if (pending.is_set() and self.armed.is_set() and not self.dropped.is_set()
                        and data.startswith(b"*") and not data.startswith(b"*0\r\n")):
                    self.dropped.set()   # Redis moved the seeds; the worker never learns which
                    break
                client.sendall(data)
        except OSError:
            pass
        _close(client, upstream)


def _close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
