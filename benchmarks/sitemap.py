"""Push a sitemap index of gzip files: `python -m benchmarks.sitemap [--per-file 40000] [--files 3]`.

Serves a sitemap index of `--files` gzip sitemaps of `--per-file` URLs each from a local site,
runs `microspider push SPIDER --sitemap URL` against a private redis-server, and prints the URLs
pushed per second and the push process's peak RSS, next to the same push of a tenth of the
URLs: flat memory means both peaks are about equal.  Exit 1 if a URL is missing.
"""
import argparse
import subprocess
import sys
import tempfile
import time

import redis

from tests import sitemap_site as sm
from tests.crawl import cli_env, write_spider
from tests.servers import RedisServer, Site

SPIDER = '''
class Maps(Spider):
    name = "maps"
    def parse(self, response, seed):
        return ()
'''


# the CLI, reporting its own peak RSS on stderr as it exits
MEASURED = ("import atexit, resource, runpy, sys\n"
            "atexit.register(lambda: sys.stderr.write('peak_rss_kb %d\\n'\n"
            "    % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
            "sys.argv = ['microspider'] + sys.argv[1:]\n"
            "runpy.run_module('microspider', run_name='__main__')\n")


def push(per_file, files):
    """(URLs queued, seconds, peak RSS of the push process in MB, its last line)."""
    table = {}
    site = Site(sm.route_for(table)).start()
    table.update(sm.files(site.url, per_file=per_file, files_n=files))
    server = RedisServer().start()
    folder = tempfile.mkdtemp(prefix="ms-sitemap-")
    try:
        write_spider(folder, "maps.py", SPIDER)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", MEASURED, "push", "maps.py", "--redis", server.url,
                               "--sitemap", site.url + "/sitemap_index.xml"],
                              cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=600)
        took = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit("push failed:\n" + proc.stderr[-2000:])
        queued = redis.Redis.from_url(server.url).llen("microspider:{maps}:work")
    finally:
        site.stop()
        server.cleanup()
    lines = proc.stderr.strip().splitlines()
    peak = int(next(line for line in lines if line.startswith("peak_rss_kb")).split()[1]) / 1024.0
    said = [line for line in lines if line.startswith("microspider:")]
    return queued, took, peak, said[-1] if said else ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=40000)
    parser.add_argument("--files", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for per_file in (max(args.per_file // 10, 1), args.per_file):
        queued, took, peak, line = push(per_file, args.files)
        rows.append((queued, took, peak, line))
        if queued != per_file * args.files:
            sys.exit("pushed %d of %d URLs: %s" % (queued, per_file * args.files, line))
    print("%10s %10s %10s %14s" % ("URLs", "seconds", "URLs/s", "peak RSS MB"))
    for queued, took, peak, _ in rows:
        print("%10d %10.2f %10.0f %14.1f" % (queued, took, queued / took, peak))
    print(rows[-1][3])


if __name__ == "__main__":
    main()
