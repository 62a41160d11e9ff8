"""The command line: a thin click group; each command parses input and calls one library function.

Flags default to None so a flag the user did not type never overrides
microspider.cfg or a spider class attribute.  Bad input ends with one line on
stderr and exit status 2.
"""
import logging
import sys

import click

from . import crawl, data, embedded, failures, proxy, seeds, trying, web  # noqa: F401 (each registers its commands)
from .common import cli

__all__ = ["cli", "main"]


def main(argv=None):
    """Run the CLI; returns the exit status (2 for bad input, with one line on stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s microspider: %(message)s", datefmt="%H:%M:%S")
    try:
        cli.main(args=argv, prog_name="microspider", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("microspider: aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo("microspider: error: %s" % exc.format_message(), err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
