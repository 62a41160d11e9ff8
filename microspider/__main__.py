"""The console entry point: gevent monkey-patching first, then the CLI.

This is the only place microspider patches; nothing imported above this
function touches requests, redis or sockets.
"""
import sys


def main():
    from gevent import monkey

    monkey.patch_all()
    from microspider.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
