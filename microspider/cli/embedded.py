"""``stop``: end the embedded Redis of this folder (``./.microspider/``)."""
import click

from .common import cli, handle_errors, say


@cli.command(short_help="Stop the embedded Redis of this folder.")
@click.option("--force", is_flag=True, help="stop it even while workers of a run are alive")
@handle_errors
def stop(force):
    """Stop the embedded Redis started under ./.microspider/ (its data stays on disk).

    The next command started in this folder starts it again with the same data.
    Refused while a run's workers are alive (they would wait for it), unless --force.
    """
    from ..ops.embedded import stop_embedded

    say(stop_embedded(force=force))
