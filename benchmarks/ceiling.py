"""The page server's own ceiling: pages/s a fast client gets from it, in the same run.

With ``wrk`` on PATH: ``wrk -t1 -cC -dSs`` with a Lua script cycling through the
pages.  Without it: this module's client (``python -m benchmarks.ceiling``),
raw keep-alive sockets on gevent, one process per ``--procs``, no HTTP library.
Either way the figure is what the server gives one client process while it has
the other core, which is the situation of the one-process contenders.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

WRK_SCRIPT = """\
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/p/" .. (i %% %d) .. ".html")
end
"""


def measure(base, pages, connections=64, seconds=3.0):
    """(requests per second, client description) for the server at `base`."""
    if shutil.which("wrk"):
        return _wrk(base, pages, connections, seconds)
    return _python(base, pages, connections, seconds)


def _wrk(base, pages, connections, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % pages)
    try:
        out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % max(int(seconds), 1),
                              "-s", f.name, base + "/"], capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    found = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
    if not found:
        raise RuntimeError("cannot read wrk's output: %s" % out.stdout[-500:])
    return float(found.group(1)), "wrk -t1 -c%d -d%ds" % (connections, max(int(seconds), 1))


def _python(base, pages, connections, seconds, procs=1):
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = subprocess.run([sys.executable, "-m", "benchmarks.ceiling", "--base", base,
                          "--pages", str(pages), "--connections", str(connections),
                          "--seconds", str(seconds)], capture_output=True, text=True, check=True,
                         env=env, cwd=repo)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rps"], "benchmarks.ceiling (raw gevent sockets, %d connections)" % connections


def client(base, pages, connections, seconds):
    """Raw keep-alive GETs for `seconds`; returns requests per second (run patched)."""
    import gevent
    from gevent import socket

    host, port = base.split("//", 1)[1].split(":")
    done = [0]
    deadline = time.monotonic() + seconds

    def loop(k):
        sock = socket.create_connection((host, int(port)))
        i, buf = k, b""
        while time.monotonic() < deadline:
            sock.sendall(b"GET /p/%d.html HTTP/1.1\r\nHost: x\r\n\r\n" % (i % pages))
            i += connections
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = buf[:end]
                    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                    if len(buf) >= end + 4 + length:
                        buf = buf[end + 4 + length:]
                        break
                data = sock.recv(262144)
                if not data:
                    return
                buf += data
            done[0] += 1
        sock.close()

    started = time.monotonic()
    gevent.joinall([gevent.spawn(loop, k) for k in range(connections)])
    return done[0] / (time.monotonic() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    from gevent import monkey

    monkey.patch_all()
    print(json.dumps({"rps": client(args.base, args.pages, args.connections, args.seconds)}))


if __name__ == "__main__":
    main()
