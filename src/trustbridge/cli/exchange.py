"""``trustbridge exchange|onboard|session|contract|message``: first contact with a partner node,
contracts signed online by both, secure messages under access policies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from trustbridge.cli._common import _holder_signer, _home, _load_certs, _read, console
from trustbridge.errors import InputError

__all__ = ["contract_app", "exchange_app", "message_app", "onboard", "session_app"]

exchange_app = typer.Typer(
    help="Set this company node up for partner exchange.", no_args_is_help=True
)
session_app = typer.Typer(help="First-contact sessions with partner nodes.", no_args_is_help=True)
contract_app = typer.Typer(
    help="Contracts: render, sign, verify (PAdES B-LTA).", no_args_is_help=True
)
message_app = typer.Typer(
    help="Secure messages (JWS in JWE) under concluded contracts.", no_args_is_help=True
)

_STEPS = "discover, hello, presentation, profile, propose, countersign, conclude"


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _passphrase(env: str | None) -> bytes | None:
    return os.environ.get(env, "").encode() if env else None


@exchange_app.command("setup")
def setup(
    policy: Annotated[
        str,
        typer.Option(help="Requirement policy for newcomers: a shipped name or a YAML file."),
    ],
    min_level: Annotated[
        str, typer.Option(help="Lowest reference level of a partner's organization identity.")
    ] = "itg-loa2",
    tsa: Annotated[
        str | None, typer.Option(help="TSA URL (RFC 3161) for our contract signatures.")
    ] = None,
    agreement_key: Annotated[
        Path | None, typer.Option(help="The organization's key-agreement key (PEM).")
    ] = None,
    agreement_chain: Annotated[
        Path | None, typer.Option(help="Its certificate and chain (PEM, leaf first).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The node's TLS key (PEM).")] = None,
    tls_chain: Annotated[
        Path | None, typer.Option(help="Its certificate (serverAuth) and chain (PEM).")
    ] = None,
    key_passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the keys' passphrase.")
    ] = None,
) -> None:
    """Set the newcomer policy, the TSA, the key-agreement and TLS identities of this node.

    The organization identity is the home's credential issuer identity (trustbridge credential
    issuer); the keys are kept encrypted with the same secret.
    """
    from trustbridge.home.exchange import ExchangeSettings

    def pair(key: Path | None, chain: Path | None, what: str) -> tuple[bytes | None, list[Any]]:
        if (key is None) != (chain is None):
            raise InputError(f"give both the {what} key and its chain, or neither")
        if key is None or chain is None:
            return None, []
        return _read(key, f"{what} key"), _load_certs(chain)

    a_key, a_chain = pair(agreement_key, agreement_chain, "key-agreement")
    t_key, t_chain = pair(tls_key, tls_chain, "TLS")
    with _home() as home:
        home.exchange.configure(
            ExchangeSettings(policy=policy, min_level=min_level, tsa=tsa),
            agreement_key=a_key,
            agreement_chain=a_chain,
            tls_key=t_key,
            tls_chain=t_chain,
            key_passphrase=_passphrase(key_passphrase_env),
        )
        console.print(
            f"exchange set up for {home.exchange.organization_name()}: policy {policy}, "
            f"newcomers from {min_level}"
        )


@exchange_app.command("describe")
def describe_cmd() -> None:
    """Print this node's description, as /.well-known/trustbridge serves it (signed)."""
    from trustbridge.node.partner import describe

    with _home() as home:
        config = home.config
        _print_json(describe(home, https_url=f"https://{config.host}:{config.https_port}"))


def onboard(
    partner: Annotated[
        str | None, typer.Option("--partner", help="The partner node: https://HOST:PORT.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this session (after a stop).")
    ] = None,
    terms: Annotated[
        Path | None, typer.Option(help="Contract terms (JSON) to propose once both assessed.")
    ] = None,
    signatory_key: Annotated[
        Path | None, typer.Option(help="Our authorized signatory's key (PEM).")
    ] = None,
    signatory_chain: Annotated[
        Path | None, typer.Option(help="Our signatory's certificate and chain (PEM).")
    ] = None,
    signatory_passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the signatory key's passphrase.")
    ] = None,
    until: Annotated[str | None, typer.Option(help=f"Stop after this step ({_STEPS}).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the session as JSON.")] = False,
) -> None:
    """First contact with a partner node: discover it, authenticate both ways, exchange and
    assess trust profiles, propose a contract signed by our signatory, conclude it.

    Each step is stored; run again with --resume SESSION to continue after a stop, a crash or
    while waiting for the partner's signatory. Exit code 0 when the session advanced or ended
    concluded, 3 when it was rejected or refused.
    """
    from trustbridge.exchange.contract import ContractTerms
    from trustbridge.exchange.protocol import Step
    from trustbridge.node.onboard import onboard as drive

    if (partner is None) == (resume is None):
        raise InputError("give --partner URL to start a session or --resume ID to continue one")
    stop = None
    if until is not None:
        try:
            stop = Step(until)
        except ValueError:
            raise InputError(f"--until {until!r} is no step", hint=f"steps: {_STEPS}") from None
    loaded = ContractTerms.load(terms) if terms is not None else None
    signatory = None
    if signatory_key is not None or signatory_chain is not None:
        if signatory_key is None or signatory_chain is None:
            raise InputError("give both --signatory-key and --signatory-chain")
        signatory = (
            _holder_signer(signatory_key, signatory_passphrase_env),
            _load_certs(signatory_chain),
        )
    with _home() as home:
        result = drive(
            home,
            partner_url=partner,
            session_id=resume,
            terms=loaded,
            signatory=signatory,
            until=stop,
            say=lambda text: console.print(
                f"  [green]✓[/] {escape(text)}", highlight=False, markup=True
            ),
        )
        info = result.session
        if as_json:
            _print_json({**info.to_json(), "waiting": result.waiting})
        else:
            console.print(
                f"session [bold]{info.id}[/] with {escape(info.partner_name or info.partner_url)}: "
                f"[bold]{info.state}[/]" + (f" ({escape(info.reason)})" if info.reason else ""),
                markup=True,
            )
            if result.waiting:
                console.print(
                    f"  {result.waiting}; continue with: trustbridge onboard --resume {info.id}"
                )
        if info.state == "rejected":
            raise typer.Exit(3)


@session_app.command("list")
def session_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The sessions of this node, as initiator and as responder."""
    with _home() as home:
        sessions = home.exchange.sessions()
        if as_json:
            _print_json([s.to_json() for s in sessions])
            return
        table = Table(title="exchange sessions")
        for column in ("session", "role", "partner", "state", "contract", "steps"):
            table.add_column(column)
        for s in sessions:
            table.add_row(
                s.id,
                s.role,
                s.partner_name or s.partner_url,
                s.state,
                s.contract_id or "",
                ", ".join(s.steps),
            )
        console.print(table)


@session_app.command("show")
def session_show(session: Annotated[str, typer.Argument(help="The session id.")]) -> None:
    """One session: its steps, both assessments, the contract's state (JSON)."""
    with _home() as home:
        info = home.exchange.session(session)
        data = info.to_json()
        data["assessment"] = info.data.get("assessment")
        data["partner_assessment"] = info.data.get("their_assessment")
        data["partner_identity"] = info.data.get("partner")
        _print_json(data)


@contract_app.command("render")
def contract_render(
    terms: Annotated[Path, typer.Argument(help="Contract terms (JSON).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
) -> None:
    """Render terms as a PDF (terms.json attached, one empty signature field per party)."""
    from trustbridge.exchange.contract import ContractTerms, render_contract

    pdf = render_contract(ContractTerms.load(terms))
    out.write_bytes(pdf)
    console.print(f"{out} ({len(pdf)} bytes)")


@contract_app.command("sign")
def contract_sign(
    session: Annotated[str, typer.Argument(help="The session whose proposed contract to sign.")],
    key: Annotated[Path, typer.Option("--key", help="The signatory's key (PEM).")],
    chain: Annotated[Path, typer.Option("--chain", help="Its certificate and chain (PEM).")],
    passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the key's passphrase.")
    ] = None,
) -> None:
    """Countersign a contract a partner proposed, as our authorized signatory (PAdES, with a
    timestamp from our TSA). The partner's node fetches it on its next run."""
    from trustbridge.node.onboard import http_timestamper

    signer = _holder_signer(key, passphrase_env)
    with _home() as home:
        settings = home.exchange.settings()
        if settings.tsa is None:
            raise InputError("this home names no TSA", hint="trustbridge exchange setup --tsa URL")
        home.exchange.countersign(
            session,
            signer=signer,
            chain=_load_certs(chain),
            timestamp=http_timestamper(settings.tsa),
        )
        console.print(f"contract of session {session} countersigned")


@contract_app.command("export")
def contract_export(
    session: Annotated[str, typer.Argument(help="The session.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
) -> None:
    """Write a session's contract PDF (as it stands: proposed, countersigned or concluded)."""
    with _home() as home:
        pdf = home.exchange.contract(session)
    out.write_bytes(pdf)
    console.print(f"{out} ({len(pdf)} bytes)")


@contract_app.command("verify")
def contract_verify(
    pdf: Annotated[Path, typer.Argument(help="The contract PDF.")],
    offline: Annotated[
        bool, typer.Option(help="Use only the validation data in the PDF (no fetching).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Verify a contract with this home's trust: every signature, its signatory's authority
    and trust route, its timestamp, the modifications after it. Exit 3 if any check fails."""
    with _home() as home:
        report = home.exchange.verify_contract(_read(pdf, "contract"), allow_fetching=not offline)
    document = report.to_json()
    if as_json:
        _print_json(document)
    else:
        console.print(
            f"contract [bold]{escape(report.terms.id)}[/]: "
            + ("complete" if report.complete else "incomplete")
            + (", archived (B-LTA)" if report.archived else ""),
            markup=True,
        )
        for s in report.signatures:
            mark = "[green]valid[/]" if s.ok else "[red]INVALID[/]"
            console.print(f"  {mark} {escape(str(s.to_json()))}", markup=True)
    if not (report.complete and all(s.ok for s in report.signatures)):
        raise typer.Exit(3)


@message_app.command("send")
def message_send(
    contract: Annotated[str, typer.Option(help="The concluded contract's id.")],
    partner: Annotated[str, typer.Option(help="The partner's organization identifier.")],
    file: Annotated[Path, typer.Option("--file", help="The data to send.")],
    element: Annotated[str, typer.Option(help="The data element (test-report, ...).")],
    purpose: Annotated[str, typer.Option(help="What the partner may use it for.")],
    key: Annotated[Path, typer.Option("--key", help="The sending software's key (PEM).")],
    chain: Annotated[Path, typer.Option("--chain", help="Its certificate and chain (PEM).")],
    name: Annotated[str | None, typer.Option(help="A name for the data item.")] = None,
    media_type: Annotated[str, typer.Option(help="The data's media type.")] = "application/json",
    component: Annotated[
        str | None, typer.Option(help="The component the data describes (serial).")
    ] = None,
    passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the key's passphrase.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sign (JWS) and encrypt (JWE) data to the partner of a concluded contract and send it.
    Exit 0 when accepted, 3 when refused (the reason and the signed receipt are kept)."""
    from trustbridge.node.onboard import send_message

    signer = _holder_signer(key, passphrase_env)
    with _home() as home:
        sent = send_message(
            home,
            contract=contract,
            partner=partner,
            content=_read(file, "data"),
            media_type=media_type,
            name=name or file.name,
            element=element,
            purpose=purpose,
            sender=signer,
            sender_chain=_load_certs(chain),
            component=component,
        )
    if as_json:
        _print_json(
            {
                "id": sent.id,
                "accepted": sent.accepted,
                "reason": sent.reason,
                "receipt": sent.receipt,
            }
        )
    else:
        verdict = "[green]accepted[/]" if sent.accepted else "[red]refused[/]"
        console.print(f"message {sent.id}: {verdict}: {escape(sent.reason)}", markup=True)
    if not sent.accepted:
        raise typer.Exit(3)


@message_app.command("list")
def message_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Messages received and sent, accepted or refused, with the reasons."""
    with _home() as home:
        messages = home.exchange.messages()
    if as_json:
        _print_json(messages)
        return
    table = Table(title="messages")
    for column in ("id", "dir", "from", "to", "element", "purpose", "accepted", "reason"):
        table.add_column(column)
    for m in messages:
        table.add_row(
            m["id"],
            m["direction"],
            m["from"] or "",
            m["to"],
            m["element"] or "",
            m["purpose"] or "",
            "yes" if m["accepted"] else "no",
            m["reason"],
        )
    console.print(table)


@message_app.command("verify")
def message_verify(
    message: Annotated[str, typer.Argument(help="The message id.")],
    direction: Annotated[str, typer.Option(help="in (received) or out (sent).")] = "in",
) -> None:
    """Check a stored message again: the sender's signature and identity (resolved now), and
    the receipt's signature. Exit 3 if any check fails."""
    from trustbridge.exchange.messages import verify_receipt
    from trustbridge.home.exchange import verify_stored_message

    with _home() as home:
        stored = home.exchange.message(message, direction=direction)
        result = verify_stored_message(home, stored)
        if stored["receipt"]:
            receipt = verify_receipt(stored["receipt"], at=home.now(), source="receipt")
            result["receipt"] = receipt.to_json()
    _print_json(result)


@message_app.command("read")
def message_read(
    message: Annotated[str, typer.Argument(help="The message id (received).")],
    reader: Annotated[Path, typer.Option("--as", help="The reader's certificate and chain (PEM).")],
    purpose: Annotated[str, typer.Option(help="What the reader wants the data for.")],
    role: Annotated[
        list[str] | None,
        typer.Option(help="Roles the organization assigns the reader (quality-engineer, ...)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the content here.")] = None,
) -> None:
    """Read a received message's content, if the access policy lets this person read it for
    this purpose. Exit 3 (with the policy's reason) if not."""
    from trustbridge.home.exchange import read_message

    with _home() as home:
        decision, content = read_message(
            home, message, reader=_load_certs(reader), purpose=purpose, roles=role or []
        )
    if content is None:
        console.print(f"[red]refused[/]: {escape(decision.explain())}", markup=True)
        raise typer.Exit(3)
    console.print(f"[green]allowed[/]: {escape(decision.explain())}", highlight=False, markup=True)
    if out is not None:
        out.write_bytes(content)
    else:
        console.print(content.decode("utf-8", errors="replace"), highlight=False)
