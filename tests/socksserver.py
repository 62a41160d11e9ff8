"""A real SOCKS5 proxy on 127.0.0.1 for the tests: no authentication, CONNECT only.

Enough of RFC 1928 for a client that sends IPv4 addresses (``socks5://``) or
host names (``socks5h://``).  ``hits`` counts the tunnels it opened.
"""
import socket
import struct
import threading

from tests.proxyserver import _pump


class SocksServer:
    """``start()``, ``url``, ``hits``, ``stop()``; one thread per client connection."""

    def __init__(self, scheme="socks5"):
        self.scheme = scheme
        self.hits = 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self._listener.getsockname()[1])

    def start(self):
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            client.settimeout(10)
            upstream = self._handshake(client)
            if upstream is not None:
                with self._lock:
                    self.hits += 1
                client.settimeout(None)
                _pump(client, upstream)
        except (OSError, ValueError, struct.error):
            pass
        finally:
            client.close()

    def _handshake(self, client):
        version, count = _read(client, 2)
        methods = _read(client, count)
        if version != 5 or 0 not in methods:
            client.sendall(b"\x05\xff")
            return None
        client.sendall(b"\x05\x00")                      # no authentication
        version, command, _, kind = _read(client, 4)
        if kind == 1:
            host = socket.inet_ntoa(_read(client, 4))
        elif kind == 3:
            host = _read(client, _read(client, 1)[0]).decode("idna")
        else:
            client.sendall(b"\x05\x08\x00\x01" + bytes(6))  # address type not supported
            return None
        port = struct.unpack("!H", _read(client, 2))[0]
        if command != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6))  # only CONNECT
            return None
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return None
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", 0))
        return upstream


def _read(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("the client hung up during the handshake")
        data += chunk
    return data
