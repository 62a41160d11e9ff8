"""Benchmarks of microspider against the bare gevent+requests loop (see README.md)."""
