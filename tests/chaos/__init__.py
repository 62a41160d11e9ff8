"""The fault-injection suite: ``python -m tests.chaos [--trials N] [--seed 1] [--only kill9,signals,...]``.

Each trial crawls a local site (the Ctrip-like one with the three chained chaos
spiders, or a purpose-built faulty one) with real ``microspider run`` processes
against a private Redis, injects one fault, drives the crawl to its end and
accounts for every seed: cached + backlogged + stored failures + quarantined
must cover every seed ever queued, nothing left in flight, items once each.
See ``suite.py`` for the kinds and the table; nothing here runs at import.
"""
