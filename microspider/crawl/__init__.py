"""Crawling: the worker loop, its supervisor, the outcome path, the relay, fetching and responses."""
