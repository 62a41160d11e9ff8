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

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(profile, width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height),
                 "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"),
                            options=options)


def shown_pages(driver):
    cells = driver.find_elements(By.CSS_SELECTOR, '[data-spider="ctrip_hotel_info"] [data-key="cached"]')
    try:
        return int(cells[0].text) if cells else 0
    except (ValueError, StaleElementReferenceException):
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
    profile = tempfile.mkdtemp(prefix="ms-chromium-")
    driver = None
    try:
        for line in demo.stdout:
            sys.stdout.write(line)
            if re.search(r"dashboard at http://", line):
                break
        driver = chromium(profile, 1280, 620)
        driver.get("http://127.0.0.1:%d/?lang=%s" % (port, args.lang))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and shown_pages(driver) < args.pages:
            time.sleep(0.5)  # the page refreshes itself; this only waits for the crawl
        driver.save_screenshot(args.out)
        print("saved %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    finally:
        if driver is not None:
            driver.quit()
        for line in demo.stdout:
            sys.stdout.write(line)
        demo.wait()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return demo.returncode


if __name__ == "__main__":
    sys.exit(main())
