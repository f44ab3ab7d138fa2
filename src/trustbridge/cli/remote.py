"""``trustbridge remote``: administer a running node over its signed HTTPS API."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from cryptography import x509
from rich.markup import escape

from trustbridge.cli._common import _holder_signer, _load_certs, _read, console
from trustbridge.errors import InputError
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.pki.signers import FileSigner

if TYPE_CHECKING:
    from trustbridge.node.client import SignedClient

__all__ = ["remote_app"]

remote_app = typer.Typer(
    help="Administer a running node over HTTPS; every request is signed with your identity "
    "(operator or registration officer).",
    no_args_is_help=True,
)


@dataclass
class _Caller:
    node: str = ""
    cert: Path | None = None
    key: Path | None = None
    passphrase_env: str | None = None
    trust: Path | None = None


_caller = _Caller()


@remote_app.callback()
def remote(
    node: Annotated[
        str,
        typer.Option(envvar="TRUSTBRIDGE_NODE", help="The node's API, https://HOST:PORT."),
    ],
    cert: Annotated[
        Path,
        typer.Option(
            envvar="TRUSTBRIDGE_CALLER_CERT",
            help="Your identity certificate (PEM; may be followed by its chain).",
        ),
    ],
    key: Annotated[
        Path, typer.Option(envvar="TRUSTBRIDGE_CALLER_KEY", help="Its private key (PEM).")
    ],
    key_passphrase_env: Annotated[
        str | None, typer.Option(help="Env variable with the key's passphrase.")
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(
            envvar="TRUSTBRIDGE_TRUST",
            help="PEM root(s) the node's TLS certificate must chain to (default: system store).",
        ),
    ] = None,
) -> None:
    """Administer a running node: requests, approvals, revocation, CRLs, tokens, audit."""
    _caller.node, _caller.cert, _caller.key = node, cert, key
    _caller.passphrase_env, _caller.trust = key_passphrase_env, trust


def _client() -> tuple[SignedClient, FileSigner, x509.Certificate]:
    assert _caller.cert is not None and _caller.key is not None
    chain = _load_certs(_caller.cert)
    if not chain:
        raise InputError(f"{_caller.cert} holds no certificate")
    signer = _holder_signer(_caller.key, _caller.passphrase_env)
    from trustbridge.node.client import SignedClient

    client = SignedClient(_caller.node, signer=signer, chain=chain, trust=_caller.trust)
    return client, signer, chain[0]


def _call(
    method: str, path: str, body: Any = None, params: dict[str, str | int] | None = None
) -> Any:
    client, _, _ = _client()
    with client:
        return client.request(method, path, body=body, params=params)


def _show(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))


def _write_outcome(result: dict[str, Any], out: Path | None) -> None:
    request = result["request"]
    if not result["certificates"]:
        console.print(
            f"request [bold]{escape(str(request['id']))}[/] {escape(str(request['state']))}",
            markup=True,
        )
        return
    console.print(
        f"request [bold]{escape(str(request['id']))}[/] released: certificate issued", markup=True
    )
    if out is None:
        console.print(result["certificates"][0], end="")
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "cert.pem").write_text(result["certificates"][0])
    (out / "chain.pem").write_text("".join(result["chain"]))
    console.print(f"wrote {out / 'cert.pem'} and {out / 'chain.pem'}")


@remote_app.command("whoami")
def whoami() -> None:
    """Who the node takes you for: subject, fingerprint, roles."""
    _show(_call("GET", "/api/v1/whoami"))


@remote_app.command("requests")
def requests(
    state: Annotated[str | None, typer.Option(help="pending, issued, rejected, ...")] = None,
    ca: Annotated[str | None, typer.Option(help="Only this CA's requests.")] = None,
) -> None:
    """List issuance requests (JSON)."""
    params: dict[str, str | int] = {}
    if state:
        params["state"] = state
    if ca:
        params["ca"] = ca
    _show(_call("GET", "/api/v1/requests", params=params))


@remote_app.command("request")
def request_show(request_id: str) -> None:
    """Show one request, with the digest a decision signs (JSON)."""
    _show(_call("GET", f"/api/v1/requests/{request_id}"))


@remote_app.command("submit")
def submit(
    ca: Annotated[str, typer.Option(help="Issuing CA (short name).")],
    level: Annotated[str, typer.Option(help="Assurance level name, e.g. de-high.")],
    subject: Annotated[
        Path, typer.Option(help='JSON file: the subject with its "kind" (see docs).')
    ],
    csr: Annotated[Path, typer.Option(help="The holder's PKCS#10 request (PEM).")],
    purpose: Annotated[str, typer.Option(help="identity or key-agreement.")] = "identity",
    days: Annotated[int | None, typer.Option(help="Validity in days.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for a released certificate.")] = None,
) -> None:
    """Submit an issuance request on the holder's behalf; you are recorded as requester."""
    try:
        subject_data = json.loads(_read(subject, "subject file"))
    except ValueError as exc:
        raise InputError(f"{subject} is not JSON: {exc}") from None
    body = {
        "ca": ca,
        "level": level,
        "subject": subject_data,
        "csr": _read(csr, "CSR").decode("ascii", "replace"),
        "purpose": purpose,
        "lifetime_days": days,
    }
    _write_outcome(_call("POST", "/api/v1/requests", body), out)


def _decide(
    request_id: str, decision: Literal["approve", "reject"], reason: str, out: Path | None
) -> None:
    client, signer, _ = _client()
    with client:
        info = client.request("GET", f"/api/v1/requests/{request_id}")
        statement = Decision(
            request_id=request_id,
            request_digest=info["digest"],
            decision=decision,
            at=client.clock.now(),
            reason=reason,
        )
        payload = statement.payload()
        result = client.request(
            "POST",
            f"/api/v1/requests/{request_id}/decision",
            body={
                "statement": base64.b64encode(payload).decode(),
                "signature": base64.b64encode(sign_statement(payload, signer)).decode(),
            },
        )
    _write_outcome(result, out)


@remote_app.command("approve")
def approve(
    request_id: str,
    reason: Annotated[str, typer.Option()] = "approved",
    out: Annotated[Path | None, typer.Option(help="Folder for the issued certificate.")] = None,
) -> None:
    """Approve a request with your signed decision (four eyes: not your own)."""
    _decide(request_id, "approve", reason, out)


@remote_app.command("reject")
def reject(
    request_id: str,
    reason: Annotated[str, typer.Option(help="Why; recorded and shown to the requester.")],
) -> None:
    """Reject a request with your signed decision."""
    _decide(request_id, "reject", reason, None)


CaOpt = Annotated[str | None, typer.Option(help="The issuing CA, where serials are ambiguous.")]


def _ca(ca: str | None) -> dict[str, str | int]:
    return {"ca": ca} if ca else {}


def _status_line(data: dict[str, Any]) -> None:
    console.print(
        f"{escape(str(data['serial']))} ({escape(str(data['subject']))}): "
        f"[bold]{escape(str(data['status']))}[/]",
        markup=True,
    )


@remote_app.command("cert")
def cert(serial: str, ca: CaOpt = None) -> None:
    """Show one issued certificate and its status (JSON)."""
    _show(_call("GET", f"/api/v1/certificates/{serial}", params=_ca(ca)))


@remote_app.command("revoke")
def revoke(
    serial: str,
    reason: Annotated[
        str, typer.Option(help="key-compromise, superseded, cessation-of-operation, ...")
    ] = "unspecified",
    compromise_date: Annotated[
        datetime | None, typer.Option(help="When the key was compromised (ISO 8601, UTC).")
    ] = None,
    ca: CaOpt = None,
) -> None:
    """Revoke a certificate on the node; its CRLs and OCSP answers follow at once."""
    body: dict[str, Any] = {"reason": reason}
    if compromise_date is not None:
        if compromise_date.tzinfo is None:
            compromise_date = compromise_date.replace(tzinfo=UTC)
        body["compromise_date"] = compromise_date.isoformat()
    _status_line(_call("POST", f"/api/v1/certificates/{serial}/revoke", body, _ca(ca)))


@remote_app.command("suspend")
def suspend(serial: str, ca: CaOpt = None) -> None:
    """Put a certificate on hold."""
    _status_line(_call("POST", f"/api/v1/certificates/{serial}/suspend", None, _ca(ca)))


@remote_app.command("resume")
def resume(serial: str, ca: CaOpt = None) -> None:
    """Lift a hold."""
    _status_line(_call("POST", f"/api/v1/certificates/{serial}/resume", None, _ca(ca)))


@remote_app.command("crl-issue")
def crl_issue(ca: str) -> None:
    """Issue a full and a delta CRL of a CA now (operators)."""
    for crl in _call("POST", f"/api/v1/cas/{ca}/crls"):
        kind = "delta CRL" if crl["delta"] else "CRL"
        console.print(f"{ca}: {kind} {crl['number']}, {crl['entries']} entries")


@remote_app.command("token")
def token(
    organization: Annotated[str, typer.Option(help="Whose machines and software it enrols.")],
    hours: Annotated[int, typer.Option(help="Validity in hours.")] = 24,
) -> None:
    """Create a one-time EST enrolment token (operators); printed once."""
    result = _call(
        "POST", "/api/v1/enrolment-tokens", {"organization": organization, "hours": hours}
    )
    console.print(result["token"])


@remote_app.command("audit")
def audit(
    object_id: Annotated[str | None, typer.Option("--object", help="Only this object.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """The node's audit trail, newest first (JSON; operators)."""
    params: dict[str, str | int] = {"limit": limit}
    if object_id:
        params["object_id"] = object_id
    _show(_call("GET", "/api/v1/audit", params=params))
