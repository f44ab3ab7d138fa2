"""``trustbridge log``: this node's transparency log, and monitoring and witnessing others."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from trustbridge.cli._common import _home, _read, console
from trustbridge.errors import InputError

__all__ = ["log_app"]

log_app = typer.Typer(
    help="The node's transparency log (RFC 9162, C2SP checkpoints): append, show, prove, "
    "verify; monitor and witness other logs.",
    no_args_is_help=True,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@log_app.command("init")
def init(
    passphrase_file: Annotated[
        str | None,
        typer.Option(help="A file in the home (mode 600) with the log key's passphrase."),
    ] = None,
    passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the log key's passphrase.")
    ] = None,
) -> None:
    """Create the log's signing key (Ed25519) and print its verifier key (vkey).

    The log records entries from the start; the key signs its checkpoints. Publish the vkey
    (the node serves it at /log/v1/key) so that monitors and witnesses can check them.
    """
    from trustbridge.home.config import SecretSource

    secret = SecretSource(file=passphrase_file, env=passphrase_env)
    with _home() as home:
        key = home.log.create_key(secret=secret)
        signed = home.log.checkpoint()
    console.print(f"log {key.name}: {signed.checkpoint.size} entries")
    console.print(key.vkey, highlight=False)


@log_app.command("append")
def append(
    text: Annotated[str | None, typer.Option(help="A line of text to record.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="A JSON object to record (a file).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="What the record is about.")] = None,
    receipt: Annotated[
        Path | None, typer.Option(help="Write the receipt (entry, checkpoint, proof) here.")
    ] = None,
) -> None:
    """Append an operator's record (a note or a JSON object) to the log."""
    from trustbridge.ledger.entries import EntryKind

    if (text is None) == (json_file is None):
        raise InputError("give either --text or --json")
    body: dict[str, Any]
    if json_file is not None:
        try:
            value = json.loads(_read(json_file, "JSON record"))
        except ValueError as exc:
            raise InputError(f"{json_file} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InputError(f"{json_file} is not a JSON object")
        body = value
    else:
        assert text is not None
        body = {"text": text}
    with _home() as home:
        appended = home.log.append(EntryKind.RECORD, body, subject=subject)
        console.print(
            f"entry {appended.index} (leaf hash {_b64(appended.leaf_hash)})", highlight=False
        )
        if receipt is not None:
            proof = home.log.receipt(appended.index)
            receipt.write_text(json.dumps(proof.to_json(), indent=2) + "\n")
            console.print(f"receipt -> {receipt}")


@log_app.command("show")
def show(
    start: Annotated[int | None, typer.Option(help="List entries from this index.")] = None,
    count: Annotated[int, typer.Option(help="How many entries to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The log's newest checkpoint (signing a new one where the tree grew), its cosignatures,
    and optionally a range of entries."""
    from trustbridge.ledger.entries import LogEntry

    with _home() as home:
        log = home.log
        signed = log.checkpoint()
        cp = signed.checkpoint
        rows = log.entries(start, start + max(0, count)) if start is not None else []
        entries = [(i, LogEntry.from_bytes(d, source=f"entry {i}")) for i, d in rows]
        data = {
            "origin": cp.origin,
            "size": cp.size,
            "root": _b64(cp.root),
            "vkey": log.key().vkey,
            "cosigned_by": [
                {"name": c.name, "time": c.time.isoformat()} for c in signed.cosignatures
            ],
            "checkpoint": signed.note.decode(),
            "entries": [
                {"index": i, "kind": e.kind.value, "time": e.time.isoformat(), "body": e.body}
                for i, e in entries
            ],
        }
    if as_json:
        _print_json(data)
        return
    console.print(
        f"[bold]{escape(cp.origin)}[/]: {cp.size} entries, root {data['root']}", markup=True
    )
    for c in signed.cosignatures:
        console.print(f"  cosigned by {c.name} at {c.time.isoformat()}")
    if entries:
        table = Table()
        for column in ("#", "kind", "time", "about"):
            table.add_column(column)
        for i, e in entries:
            about = e.body.get("subject") or e.body.get("serial") or e.body.get("id") or ""
            table.add_row(str(i), e.kind.value, e.time.isoformat(), str(about)[:60])
        console.print(table)


@log_app.command("prove")
def prove(
    index: Annotated[int | None, typer.Argument(help="The entry to prove.")] = None,
    consistency: Annotated[
        str | None, typer.Option(help="FIRST:SECOND: a consistency proof between two sizes.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the proof (JSON) here.")] = None,
) -> None:
    """An inclusion proof of entry INDEX as a receipt (entry, signed checkpoint, proof), or a
    consistency proof between two tree sizes."""
    with _home() as home:
        log = home.log
        if consistency is not None:
            try:
                first_text, second_text = consistency.split(":")
                first, second = int(first_text), int(second_text)
            except ValueError:
                raise InputError(f"--consistency {consistency!r} is not FIRST:SECOND") from None
            data: dict[str, Any] = {
                "origin": log.origin,
                "first": first,
                "second": second,
                "first_root": _b64(log.root(first)),
                "second_root": _b64(log.root(second)),
                "proof": [_b64(p) for p in log.consistency_proof(first, second)],
            }
        elif index is not None:
            data = log.receipt(index).to_json()
        else:
            raise InputError("give an entry INDEX or --consistency FIRST:SECOND")
    text = json.dumps(data, indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        console.print(f"proof -> {out}")
    else:
        console.print(text, highlight=False, end="")


@log_app.command("verify")
def verify(
    receipt: Annotated[
        Path | None, typer.Argument(help="A receipt to check (default: audit the whole log).")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="The log's vkey (default: this log or a followed one).")
    ] = None,
) -> None:
    """Audit this node's whole log (every entry hashes to its leaf, every checkpoint it signed
    is the root of the stored tree at its size), or check a receipt against its log's key."""
    from trustbridge.ledger.note import LogKey
    from trustbridge.ledger.receipt import Receipt

    with _home() as home:
        if receipt is None:
            audit = home.log.verify()
            console.print(
                f"log {home.log.origin}: {audit.size} entries, root {_b64(audit.root)}; "
                f"all {audit.checkpoints} checkpoints signed are consistent with the stored tree"
            )
            return
        try:
            data = json.loads(_read(receipt, "receipt"))
        except ValueError as exc:
            raise InputError(f"{receipt} is not JSON: {exc}") from None
        parsed = Receipt.from_json(data, source=str(receipt))
        if key is not None:
            log_key = LogKey.from_vkey(key, source="--key")
        elif parsed.origin == home.log.origin:
            log_key = home.log.key()
        else:
            log_key = home.log.peer(parsed.origin).key
        signed, entry = parsed.verify(log_key, source=str(receipt))
    console.print(
        f"{receipt}: entry {parsed.index} ({entry.kind.value}, logged {entry.time.isoformat()}) "
        f"is in {parsed.origin} at size {signed.checkpoint.size}; checkpoint signed by "
        f"{log_key.name}"
    )


@log_app.command("monitor")
def monitor(
    url: Annotated[str, typer.Argument(help="The node (https://HOST:PORT) or its /log/v1.")],
    key: Annotated[
        str | None, typer.Option(help="The log's vkey (first look; default: trust on first use).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fetch a log's checkpoint and check it against the newest one seen: its signature, no
    rollback, and a consistency proof. A split view or a rollback fails loudly (exit 3)."""
    from trustbridge.ledger.note import LogKey
    from trustbridge.node.logclient import monitor as run

    with _home() as home:
        report = run(home, url, key=LogKey.from_vkey(key, source="--key") if key else None)
    if as_json:
        _print_json(report.to_json())
        return
    if report.first_contact:
        console.print(
            f"[yellow]now following[/] {escape(report.origin)} at {escape(report.url)}"
            + ("" if key else " (key trusted on first use: compare it with the operator's)"),
            markup=True,
        )
    grew = (
        f"grew from {report.previous} to {report.size} entries"
        if report.size != report.previous
        else f"unchanged at {report.size} entries"
    )
    console.print(
        f"[green]consistent[/]: {escape(report.origin)} {grew}, root {_b64(report.root)}"
        + (f"; cosigned by {escape(', '.join(report.cosigned_by))}" if report.cosigned_by else ""),
        markup=True,
    )


@log_app.command("witness")
def witness(
    url: Annotated[str, typer.Argument(help="The witness node (http://HOST:PORT).")],
    key: Annotated[
        str | None, typer.Option(help="The witness's vkey (default: the one it serves).")
    ] = None,
) -> None:
    """Ask a witness (a node that follows this log) to check and cosign our newest checkpoint."""
    from trustbridge.ledger.note import LogKey
    from trustbridge.node.logclient import request_cosignature

    with _home() as home:
        line = request_cosignature(
            home, url, key=LogKey.from_vkey(key, source="--key") if key else None
        )
        size = home.log.checkpoint().checkpoint.size
    console.print(f"checkpoint {size} cosigned: {line}", highlight=False)
