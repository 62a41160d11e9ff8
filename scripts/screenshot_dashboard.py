"""Take docs/dashboard.png: the dashboard during a short Ctrip demo, in headless Chromium.

    .venv/bin/python scripts/screenshot_dashboard.py [--hotels 300] [--out docs/dashboard.png]

Starts ``python -m examples.ctrip.demo --hotels N --web PORT`` in a temporary folder,
waits until the page shows --pages hotel pages done, saves a screenshot of ``/``, and
lets the demo finish by itself (it ends its site, runs, dashboard and Redis).
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.devtools_page import DevtoolsPage  # noqa: E402 (the checkout's own test helper)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shown_pages(page):
    try:
        return int(page.text('[data-spider="ctrip_hotel_info"] [data-key="cached"]'))
    except (AssertionError, ValueError):
        return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hotels", type=int, default=300)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "dashboard.png"))
    parser.add_argument("--pages", type=int, default=120,
                        help="hotel pages done (as the page shows) before the shot [120]")
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ms-shot-")
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "examples.ctrip.demo", "--hotels", str(args.hotels),
                             "--dir", os.path.join(work, "demo"), "--web", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = None
    try:
        for line in demo.stdout:
            sys.stdout.write(line)
            if re.search(r"dashboard at http://", line):
                break
        driver = DevtoolsPage()
        driver.get("http://127.0.0.1:%d/?lang=%s" % (port, args.lang))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and shown_pages(driver) < args.pages:
            time.sleep(0.5)  # the page refreshes itself; this only waits for the crawl
        driver.screenshot(args.out)
        print("saved %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    finally:
        if driver is not None:
            driver.close()
        for line in demo.stdout:
            sys.stdout.write(line)
        demo.wait()
        shutil.rmtree(work, ignore_errors=True)
    return demo.returncode


if __name__ == "__main__":
    sys.exit(main())
