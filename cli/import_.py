"""`artgw import`: bring an MLflow tracking store (file store or SQL database) into artgw's."""

import asyncio
import os

import click

from cli.options import options_for
from tracking.errors import StoreError, TrackingError


@click.command("import")
@click.argument("source")
@options_for("backend_store_uri")
@click.option(
    "--dry-run", is_flag=True, help="Count what would be imported; write nothing anywhere."
)
def import_(source: str, backend_store_uri: str, dry_run: bool) -> None:
    """Import the MLflow tracking store SOURCE into artgw's store --backend-store-uri.

    SOURCE is an MLflow file store directory (mlruns) or an MLflow SQL database URI
    (sqlite:///mlflow.db, postgresql://..., mysql://...), MLflow 2.x or 3.x; it is only read.
    Experiments, runs (params, tags, every metric point), datasets and run inputs/outputs,
    logged models and the model registry keep their ids and artifact URIs, so runs:/,
    models:/ and mlflow-artifacts:/ references keep resolving. Rows already in the target are
    skipped: running it again imports nothing twice, and an interrupted import resumes.
    """
    from tracking.importer.run import run_import

    if _same(source, backend_store_uri):
        raise click.UsageError("SOURCE and --backend-store-uri name the same store")
    try:
        report = asyncio.run(
            run_import(
                source,
                backend_store_uri,
                dry_run=dry_run,
                progress=lambda line: click.echo(line, err=True),
            )
        )
    except (StoreError, TrackingError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(("Dry run (nothing written): " if dry_run else "Imported: ") + source)
    for line in report.lines():
        click.echo(line)
    if report.conflicting:
        raise SystemExit(2)


def _same(source: str, target: str) -> bool:
    def plain(uri: str) -> str:
        if "://" in uri and not uri.startswith("sqlite:///"):
            return uri
        return os.path.abspath(uri.removeprefix("sqlite:///"))

    return plain(source) == plain(target)
