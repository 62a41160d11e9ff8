"""microspider: crawl a large, hostile site with small spiders linked by Redis queues.

Write a Spider with ``parse``; run it with ``microspider run spider.py``.
This module imports no network library, so the worker entry point can patch first.
"""
import logging

from .errors import (BadSeed, ConfigError, ConnectionFailed, FetchError, HTTPStatusError,
                     LockTimeout, MalformedSeed, MicrospiderError, MigrateError, NoProxy, NotYet,
                     ParseTimeout, ProxyError, SendOutsideParse, SpiderLoadError, StoreError, Throttled,
                     WorkerCrashed)
from .seed import Seed
from .spider import Spider

__all__ = ["Spider", "Seed", "MicrospiderError", "ConfigError", "SpiderLoadError", "ProxyError",
           "MigrateError", "ConnectionFailed", "StoreError", "FetchError", "NoProxy",
           "HTTPStatusError", "MalformedSeed", "BadSeed", "ParseTimeout", "WorkerCrashed",
           "LockTimeout", "SendOutsideParse", "NotYet", "Throttled"]
__version__ = "0.3.0"   # the one place of the version: setup.py reads it, so should the User-Agent

logging.getLogger("microspider").addHandler(logging.NullHandler())
