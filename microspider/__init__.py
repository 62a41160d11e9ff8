"""microspider: crawl a large, hostile site with small spiders linked by Redis queues.

Write a Spider with ``parse``; run it with ``microspider run spider.py``.
This module imports no network library, so the worker entry point can patch first.
"""
import logging

from .errors import (BadSeed, ConfigError, ConnectionFailed, FetchError, HTTPStatusError,
                     MalformedSeed, MicrospiderError, MigrateError, NoProxy, ParseTimeout, ProxyError,
                     SpiderLoadError, StoreError, WorkerCrashed)
from .seed import Seed
from .spider import Spider

__all__ = ["Spider", "Seed", "MicrospiderError", "ConfigError", "SpiderLoadError", "ProxyError",
           "MigrateError", "ConnectionFailed", "StoreError", "FetchError", "NoProxy",
           "HTTPStatusError", "MalformedSeed", "BadSeed", "ParseTimeout", "WorkerCrashed"]
__version__ = "0.2.0"

logging.getLogger("microspider").addHandler(logging.NullHandler())
