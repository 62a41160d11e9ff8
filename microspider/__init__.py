"""microspider: crawl a large, hostile site with small spiders linked by Redis queues.

Write a Spider with ``parse``; run it with ``microspider run spider.py``.
This module imports no network library, so the worker entry point can patch first.
"""
import logging

from .errors import (ConfigError, ConnectionFailed, FetchError, HTTPStatusError, MalformedSeed,
                     MicrospiderError, SpiderLoadError, StoreError)
from .seed import Seed
from .spider import Spider

__all__ = ["Spider", "Seed", "MicrospiderError", "ConfigError", "SpiderLoadError",
           "ConnectionFailed", "StoreError", "FetchError", "HTTPStatusError", "MalformedSeed"]
__version__ = "0.1.0"

logging.getLogger("microspider").addHandler(logging.NullHandler())
