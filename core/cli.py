"""The ``interlink`` command: serve, migrate, manage tenants, inspect connectors."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from interlink import __version__

__all__ = ["main"]


def _runtime() -> Any:
    from interlink.runtime import Runtime

    return Runtime.start()


@click.group()
@click.version_option(__version__, prog_name="interlink")
def main() -> None:
    """Interlink: connect third-party services to your platform."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("interlink.registry").setLevel(logging.ERROR)  # the commands report broken plugins
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request: the communication log has it


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="HTTP worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API server (granian), migrating the database first."""
    from granian import Granian
    from granian.constants import Interfaces

    from interlink.store.tenants import create_tenant, list_tenants

    runtime = _runtime()
    if runtime.config.embedded:
        with runtime.engine.begin() as conn:
            if not list_tenants(conn):
                tenant, token = create_tenant(conn, "default")
                click.echo(f"Created tenant 'default' ({tenant.id}). Its API token, shown only this once:")
                click.echo(f"\n    {token}\n")
                click.echo("Call the API with:  -H 'Authorization: Bearer <token>'")
    for broken in runtime.registry.broken:
        click.echo(f"warning: plugin {broken.entry_point} ({broken.distribution}) skipped: {broken.error}", err=True)
    click.echo(f"Interlink {__version__} on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    click.echo(f"Database: {runtime.engine.url.render_as_string(hide_password=True)}")
    runtime.close()
    Granian(
        "interlink.api.app:create_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=False,
    ).serve()


@main.command()
@click.option("--processes", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=None, type=int, help="Threads per process [default: INTERLINK_WORKER_THREADS or 8].")
def worker(processes: int, threads: int | None) -> None:
    """Run delivery workers and the reaper against INTERLINK_BROKER_URL (Redis); stop with Ctrl-C."""
    from interlink.config import Config

    if Config.from_env().broker_url is None:
        raise click.ClickException(
            "interlink worker needs INTERLINK_BROKER_URL (e.g. redis://127.0.0.1:6379/0); "
            "without it, `interlink serve` runs the workers in its own process"
        )
    if processes <= 1:
        _run_worker(threads)
        return
    import multiprocessing
    import signal
    import threading

    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_run_worker, args=(threads,), daemon=False) for _ in range(processes)]
    for child in children:
        child.start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(0.5) and any(child.is_alive() for child in children):
        pass
    for child in children:  # SIGTERM: each finishes its in-flight work, then exits
        child.terminate()
    for child in children:
        child.join()


def _run_worker(threads: int | None) -> None:
    """One worker process: consume deliveries until SIGTERM or SIGINT, then finish in-flight work."""
    import signal
    import threading

    from interlink.runtime import freeze_startup_objects

    runtime = _runtime()
    freeze_startup_objects()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    runtime.pipeline.start(threads=threads)
    broker = urlsplit(runtime.config.broker_url or "")
    click.echo(f"worker {os.getpid()} consuming from {broker.scheme}://{broker.hostname}:{broker.port}", err=True)
    stopping.wait()
    runtime.close()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from interlink.config import Config
    from interlink.store import create_engine, migrate

    config = Config.from_env()
    engine = create_engine(config.database_url)
    migrate(engine)
    click.echo(f"database at the newest revision: {engine.url.render_as_string(hide_password=True)}")


@main.group()
def tenants() -> None:
    """Tenants and their API tokens."""


@tenants.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {tenant_id, token} as JSON.")
def tenants_create(name: str, as_json: bool) -> None:
    """Create a tenant and print its API token, once."""
    from interlink.store.tenants import TenantExistsError, create_tenant

    runtime = _runtime()
    try:
        with runtime.engine.begin() as conn:
            tenant, token = create_tenant(conn, name)
    except TenantExistsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"tenant_id": tenant.id, "token": token}))
    else:
        click.echo(f"Created tenant '{name}' ({tenant.id}). Its API token, shown only this once:\n\n    {token}\n")


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tenants_list(as_json: bool) -> None:
    """List tenants (tokens are never shown again)."""
    from interlink.store.tenants import list_tenants

    runtime = _runtime()
    with runtime.engine.connect() as conn:
        items = list_tenants(conn)
    if as_json:
        click.echo(
            json.dumps([{"tenant_id": t.id, "name": t.name, "created_at": t.created_at.isoformat()} for t in items])
        )
        return
    for t in items:
        click.echo(f"{t.id}  {t.name}  {t.created_at:%Y-%m-%d %H:%M}")


@main.group()
def connectors() -> None:
    """Connector plugins."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def connectors_list(as_json: bool) -> None:
    """Loaded connectors, and plugins that were skipped with the reason."""
    from interlink.registry import load_registry

    registry = load_registry()
    loaded = sorted(registry.connectors.values(), key=lambda r: r.service)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "connectors": [
                        {
                            "service": r.service,
                            "name": r.manifest.name,
                            "version": r.manifest.version,
                            "capabilities": sorted(r.manifest.capabilities),
                            "entry_point": r.entry_point,
                            "distribution": r.distribution,
                            "distribution_version": r.distribution_version,
                        }
                        for r in loaded
                    ],
                    "broken": [b.as_dict() for b in registry.broken],
                },
                indent=2,
            )
        )
        return
    for r in loaded:
        caps = ",".join(sorted(r.manifest.capabilities))
        click.echo(f"{r.service:<20} {r.manifest.version:<8} {r.distribution:<24} {caps}")
    for b in registry.broken:
        click.echo(f"BROKEN {b.entry_point} ({b.distribution} {b.distribution_version}): {b.error}", err=True)


@connectors.command("new")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The folder to create the package folder interlink-NAME/ in.",
)
def connectors_new(name: str, directory: Path) -> None:
    """Create a connector package interlink-NAME/ (NAME is the service id) that passes the conformance
    suite as generated: pyproject with the entry point, manifest, connector class, emulator, test."""
    from interlink import scaffold
    from interlink.registry import load_registry

    try:
        scaffold.validate_service(name)
    except scaffold.ScaffoldError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    taken = load_registry().get(name)
    if taken is not None and taken.distribution != f"interlink-{name}":
        raise click.BadParameter(
            f"the service id '{name}' is already registered by {taken.distribution} (entry point "
            f"'{taken.entry_point}'), so a second package could not load; choose another NAME",
            param_hint="NAME",
        )
    try:
        root = scaffold.create(name, directory)
    except scaffold.ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created the connector package {root}:")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(f"    {path.relative_to(root)}")
    click.echo("\nNext: install it (with Interlink installed) and run its conformance tests:\n")
    click.echo(f"    pip install -e '{root}[test]'")
    click.echo(f"    cd {root} && pytest")


@main.command()
@click.argument("targets", metavar="SERVICE_OR_PACKAGE...", nargs=-1, required=True)
@click.option(
    "--url-setting",
    metavar="KEY",
    default=None,
    help="The settings key the suite points at its fault proxy [default: url for custom, else baseUrl].",
)
@click.option("--check", "checks", metavar="NAME", multiple=True, help="Run only this check (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def conformance(targets: tuple[str, ...], url_setting: str | None, checks: tuple[str, ...], as_json: bool) -> None:
    """Run the conformance suite on services, or on every connector of a distribution; exit 0 only when
    no check fails."""
    from interlink.testing import runner

    try:
        selected = runner.resolve_checks(checks)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--check") from None
    try:
        resolved = runner.resolve(targets)
    except runner.UnknownTarget as exc:
        raise click.BadParameter(str(exc), param_hint="SERVICE_OR_PACKAGE") from None
    outcomes = runner.run(resolved, url_setting=url_setting, checks=selected)
    counts = runner.summary(outcomes)
    if as_json:
        report = {"ok": counts["fail"] == 0, "summary": counts, "results": [o.as_dict() for o in outcomes]}
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(runner.format_report(outcomes))
    if counts["fail"]:
        sys.exit(1)


@main.command()
@click.argument("service")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, type=int, help="Port to listen on [default: a free one].")
@click.option("--api-key", default=None, help="The one API key it accepts [default: the emulator's test key].")
@click.option("--webhook-secret", default=None, help="The secret it signs webhooks with [default: a test secret].")
def emulate(service: str, host: str, port: int, api_key: str | None, webhook_secret: str | None) -> None:
    """Run a local emulator of SERVICE's API (in the foreground) to try a flow with no vendor account."""
    from interlink.testing.emulators import emulator_class, emulator_services

    try:
        cls = emulator_class(service)
    except KeyError:
        raise click.BadParameter(
            f"no emulator for '{service}' (there are: {', '.join(emulator_services())})", param_hint="SERVICE"
        ) from None
    emulator = cls(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
    click.echo(f"{service} emulator on {emulator.url}")
    click.echo(f"  baseUrl:        {emulator.url}")
    click.echo(f"  API key:        {emulator.api_key}")
    click.echo(f"  webhook secret: {emulator.webhook_secret}")
    click.echo(f"  settings:       {json.dumps(emulator.integration_settings())}")
    click.echo("Ctrl-C stops it.", nl=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
