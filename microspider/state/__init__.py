"""The one gateway to a spider's Redis state: queues, in-flight, backlog, cache, counters, links.

``SpiderState(redis, name)`` is the only way other modules read or write a
spider's keys; ``keys`` names them and is imported only here.
"""
from .connection import Redis
from .gateway import HEARTBEAT_TTL, SpiderState, is_known, spiders

__all__ = ["Redis", "SpiderState", "spiders", "is_known", "HEARTBEAT_TTL"]
