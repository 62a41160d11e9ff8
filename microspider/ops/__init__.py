"""What the commands do besides crawling: seeding, stats, failures, relay, dump, clear, migrate, export.

Each module holds one command's work (or two close ones) over the state gateway
and the store; the CLI only parses input and prints.
"""
