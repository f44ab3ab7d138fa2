"""``trustbridge provenance``: signed lifecycle statements of components (in-toto in DSSE),
logged in the node's transparency log, imported from partners, verified end to end."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from trustbridge.cli._common import _holder_signer, _home, _load_cert, _load_certs, _read, console
from trustbridge.errors import InputError

__all__ = ["provenance_app"]

provenance_app = typer.Typer(
    help="Lifecycle statements of components: record, show, import, verify.",
    no_args_is_help=True,
)

_EVENTS = (
    "manufactured, firmware-installed, tested, shipped, received, integrated, firmware-updated"
)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _details(text: str | None, file: Path | None) -> dict[str, Any]:
    if text is not None and file is not None:
        raise InputError("give --details or --details-file, not both")
    raw = _read(file, "details") if file is not None else (text or "{}").encode()
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"the details are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("the details are not a JSON object")
    return value


@provenance_app.command("record")
def record(
    event: Annotated[str, typer.Option(help=f"The lifecycle event: {_EVENTS}.")],
    key: Annotated[Path, typer.Option(help="The acting identity's private key (PEM).")],
    chain: Annotated[Path, typer.Option(help="Its certificate and chain (PEM, leaf first).")],
    component: Annotated[
        str | None, typer.Option(help="The component's serial number (known here already).")
    ] = None,
    component_certificate: Annotated[
        Path | None, typer.Option(help="A new component: its machine certificate (PEM).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="A new component: its model.")] = None,
    manufacturer: Annotated[str | None, typer.Option(help="A new component: its maker.")] = None,
    manufacturer_id: Annotated[
        str | None, typer.Option(help="The maker's organizationIdentifier.")
    ] = None,
    asset_id: Annotated[str | None, typer.Option(help="The AAS globalAssetId.")] = None,
    details: Annotated[str | None, typer.Option(help="Event details (JSON).")] = None,
    details_file: Annotated[Path | None, typer.Option(help="Event details (JSON file).")] = None,
    node: Annotated[
        str | None,
        typer.Option(help="Record at this node's API (https://HOST:PORT) instead of the home."),
    ] = None,
    trust: Annotated[Path | None, typer.Option(help="TLS anchor (PEM) for --node.")] = None,
    receipt: Annotated[Path | None, typer.Option(help="Write the receipt here.")] = None,
    key_passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the key's passphrase.")
    ] = None,
) -> None:
    """Sign a lifecycle statement (in-toto Statement v1 in a DSSE envelope) and have it logged.

    The statement follows the component's previous one known to the home (its digest is
    linked); a new component is named by its machine certificate, or by --component, --model
    and --manufacturer. The node checks the signer and the lifecycle, logs it, and answers a
    receipt: the entry, a signed checkpoint and the inclusion proof.
    """
    from trustbridge.provenance.statement import (
        Component,
        LifecycleEvent,
        build_statement,
        sign_statement,
    )

    try:
        kind = LifecycleEvent(event)
    except ValueError:
        raise InputError(f"{event!r} is no lifecycle event", hint=f"one of {_EVENTS}") from None
    signer = _holder_signer(key, key_passphrase_env)
    certificates = _load_certs(chain)
    with _home() as home:
        history = home.provenance.history(component) if component else []
        if history:
            previous = history[-1].statement
            subject = previous.statement.component
        else:
            previous = None
            if component_certificate is not None:
                certificate = _load_cert(component_certificate)
                subject = Component.for_certificate(
                    certificate, global_asset_id=asset_id, manufacturer_identifier=manufacturer_id
                )
            elif component and model and manufacturer:
                subject = Component(
                    serial_number=component,
                    model=model,
                    manufacturer=manufacturer,
                    manufacturer_identifier=manufacturer_id,
                    global_asset_id=asset_id,
                )
            else:
                raise InputError(
                    f"component {component!r} is new here",
                    hint="name it by --component-certificate, or --component, --model and "
                    "--manufacturer",
                )
        payload = build_statement(
            subject,
            kind,
            details=_details(details, details_file),
            previous=previous,
            claimed_time=home.now(),
        )
        statement = sign_statement(payload, signer, certificates)
        if node is not None:
            from trustbridge.node.provenance import record_remote

            answer = record_remote(node, statement, verify=str(trust) if trust else True)
        else:
            recorded = home.provenance.record(statement)
            answer = {
                "digest": recorded.digest,
                "index": recorded.index,
                "receipt": recorded.receipt.to_json(),
            }
    console.print(
        f"{kind.value} of {subject.id} logged at index {answer['index']} "
        f"(statement {answer['digest'][:16]}…)"
    )
    if receipt is not None:
        receipt.write_text(json.dumps(answer["receipt"], indent=2) + "\n")
        console.print(f"receipt -> {receipt}")


equipment_app = typer.Typer(
    help="Machines registered as production or test equipment of this organization.",
    no_args_is_help=True,
)
provenance_app.add_typer(equipment_app, name="equipment")


@equipment_app.command("add")
def equipment_add(
    certificate: Annotated[Path, typer.Argument(help="The machine's certificate (PEM).")],
) -> None:
    """Register a machine identity of this organization as production or test equipment: only
    such machines may sign that a component was manufactured, flashed or tested here."""
    with _home() as home:
        fingerprint = home.provenance.register_equipment(_load_cert(certificate))
    console.print(f"registered {fingerprint[:16]}… as production equipment")


@equipment_app.command("list")
def equipment_list() -> None:
    """The registered production and test equipment."""
    with _home() as home:
        for fingerprint, subject in home.provenance.equipment().items():
            console.print(f"{fingerprint[:16]}…  {subject}")


@provenance_app.command("show")
def show(
    component: Annotated[str | None, typer.Argument(help="A component's serial number.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The components this node holds statements for, or one component's statements (as
    logged, not verified: use verify)."""
    with _home() as home:
        if component is None:
            names = home.provenance.components()
            if as_json:
                _print_json(names)
            else:
                for name in names:
                    console.print(name)
            return
        history = home.provenance.history(component)
    if not history:
        raise InputError(f"no statements for component {component!r} here")
    rows = [
        {
            "event": r.statement.statement.event.value,
            "logged": r.time.isoformat(),
            "log": r.log,
            "index": r.index,
            "signer": r.statement.leaf.subject.rfc4514_string(),
            "digest": r.statement.digest,
        }
        for r in history
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"statements about {component} (unverified)")
    for column in ("event", "logged", "log", "signer"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["event"]),
            str(row["logged"]),
            f"{row['log']} #{row['index']}",
            str(row["signer"]),
        )
    console.print(table)


@provenance_app.command("import")
def import_(
    url: Annotated[str, typer.Argument(help="The partner node (http://HOST:PORT) or its log.")],
    component: Annotated[str, typer.Argument(help="The component's serial number.")],
) -> None:
    """Fetch a component's statements and receipts from a partner's node, check them against
    that log's newest checkpoint and the chain, and log them here too."""
    from trustbridge.node.provenance import import_component

    with _home() as home:
        recorded = import_component(home, url, component)
    console.print(f"{len(recorded)} statements about {component} imported")


@provenance_app.command("verify")
def verify(
    component: Annotated[str, typer.Argument(help="The component's serial number.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a component's whole chain: every statement logged (inclusion proof against a
    checkpoint consistent with the newest), signed by an identity trusted at its logged time,
    in lifecycle order without gaps. Exits 3 when anything fails."""
    from trustbridge.node.provenance import verify_component

    with _home() as home:
        result = verify_component(home, component)
    if as_json:
        _print_json(result.to_json())
    else:
        table = Table(title=f"provenance of {component}")
        for column in ("event", "logged (trusted)", "claimed", "signer", "route", "ok"):
            table.add_column(column)
        for entry in result.report.timeline:
            table.add_row(
                entry.event.value if entry.event else "?",
                _time(entry.time),
                _time(entry.claimed_time),
                entry.signer,
                f"{entry.route or '-'} {entry.reference_level or ''}",
                Text("yes", style="green")
                if entry.ok
                else Text("; ".join(entry.failures), style="red"),
            )
        console.print(table)
        for line in result.logs:
            console.print(f"  logged: {line}")
        for name, summary in result.assessments.items():
            console.print(
                f"  assessment of {name}: {summary.get('decision')} (score {summary.get('score')})"
            )
    if not result.valid:
        failures = [*result.log_failures, *result.report.failures]
        console.print(
            f"[red]NOT VALID[/]: {escape(failures[0]) if failures else 'empty chain'}", markup=True
        )
        raise typer.Exit(3)
    if not as_json:
        console.print(f"[green]valid[/]: {len(result.report.timeline)} statements", markup=True)


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"
