"""The `artgw` command."""

from typing import Any

import click

from cli.gc import gc
from cli.import_ import import_
from cli.options import build_settings, setting_options
from cli.users import users
from gateway.meta import artgw_version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(artgw_version(), prog_name="artgw")
def main() -> None:
    """artgw: an MLflow-compatible artifact gateway over any fsspec storage."""


@main.command()
@setting_options
def serve(**values: Any) -> None:
    """Serve the artifacts REST API (and tracking, unless --artifacts-only)."""
    import ssl

    from backends import DestinationError
    from cli.serve import serve as run
    from tracking.errors import StoreError

    try:
        settings = build_settings(values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        run(settings)
    except (DestinationError, StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ssl.SSLError as exc:
        raise click.ClickException(f"cannot use --certfile/--keyfile/--ca-certs: {exc}") from exc
    except OSError as exc:
        where = values["artifacts_destination"]
        raise click.ClickException(f"cannot use the artifacts destination {where}: {exc}") from exc


main.add_command(gc)
main.add_command(import_)
main.add_command(users)

if __name__ == "__main__":
    main()
