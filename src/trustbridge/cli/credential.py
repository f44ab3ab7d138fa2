"""``trustbridge credential ...`` and ``trustbridge profile ...``: trustworthiness credentials."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trustbridge.cli._common import (
    ChallengeAudience,
    ChallengeNonce,
    VerifierAudience,
    VerifierNonce,
    _holder_signer,
    _home,
    _load_cert,
    _load_certs,
    _read,
    console,
    err,
)
from trustbridge.credentials.errors import CredentialError
from trustbridge.errors import InputError

__all__ = ["credential_app", "profile_app"]

credential_app = typer.Typer(
    help="Trustworthiness credentials (vc+jwt, dc+sd-jwt): issue, verify, present, revoke.",
    no_args_is_help=True,
)
profile_app = typer.Typer(
    help="Trustworthiness profiles of companies, systems and products.", no_args_is_help=True
)

FormatOpt = Annotated[
    str, typer.Option("--format", help="vc+jwt, or dc+sd-jwt for selective disclosure.")
]


def _token(path: Path) -> str:
    data = _read(path, "credential")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a compact JWT / SD-JWT (not ASCII)") from None


def _write(out: Path, text: str) -> None:
    try:
        out.write_text(text + "\n", encoding="ascii")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None


@credential_app.command("issuer")
def set_issuer(
    key: Annotated[Path, typer.Option("--key", help="The organization identity's key (PEM).")],
    chain: Annotated[
        Path, typer.Option("--chain", help="Its certificate, then the chain up (PEM bundle).")
    ],
    key_passphrase_env: Annotated[
        str | None,
        typer.Option("--key-passphrase-env", help="Variable holding the key file's passphrase."),
    ] = None,
    passphrase_env: Annotated[
        str | None,
        typer.Option("--passphrase-env", help="Variable with the passphrase to store it under."),
    ] = None,
    passphrase_file: Annotated[
        str | None,
        typer.Option("--passphrase-file", help="File in the home (mode 600) with that passphrase."),
    ] = None,
) -> None:
    """Make an organization identity this home's credential issuer."""
    from trustbridge.home.config import SecretSource

    certificates = _load_certs(chain)
    passphrase = os.environ.get(key_passphrase_env, "").encode() if key_passphrase_env else None
    with _home() as home:
        leaf = home.credentials.set_issuer(
            _read(key, "key"),
            certificates,
            key_passphrase=passphrase,
            secret=SecretSource(env=passphrase_env, file=passphrase_file),
        )
        issuer = home.credentials.issuer()
    console.print(
        f"credential issuer: [bold]{escape(issuer.name)}[/] ({escape(issuer.id)}), "
        f"{escape(leaf.subject.rfc4514_string())}",
        markup=True,
    )


@credential_app.command("issue")
def issue(
    request: Annotated[Path, typer.Argument(help="The request (YAML): subject, claims, evidence.")],
    holder: Annotated[
        Path, typer.Option("--holder", help="The holder's organization identity certificate.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the credential.")],
    format: FormatOpt = "vc+jwt",
) -> None:
    """Issue a credential from REQUEST, bound to the holder's key, with status list entries."""
    from trustbridge.credentials.formats import Format
    from trustbridge.credentials.requests import credential_from_request, load_request

    try:
        chosen = Format(format)
    except ValueError:
        raise InputError(f"format {format!r} is none of vc+jwt, dc+sd-jwt") from None
    data = load_request(_read(request, "request"), source=str(request))
    holder_certificate = _load_cert(holder)
    with _home() as home:
        draft = credential_from_request(
            data, issuer=home.credentials.issuer(), at=home.now(), source=str(request)
        )
        token = home.credentials.issue(draft, format=chosen, holder=holder_certificate)
        issued = home.credentials.issued_list()[-1]
    _write(out, token)
    console.print(
        f"issued [bold]{issued.id}[/] ({chosen}, {issued.evidence}) about "
        f"{escape(issued.subject_name)}: {', '.join(issued.criteria)} -> {out}",
        markup=True,
    )


@credential_app.command("list")
def list_issued(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The credentials this home issued, with their status."""
    with _home() as home:
        issued = home.credentials.issued_list()
    if as_json:
        rows = [
            {
                "id": c.id,
                "format": c.format,
                "subject": c.subject_id,
                "criteria": list(c.criteria),
                "evidence": c.evidence,
                "issued_at": c.issued_at.isoformat(),
                "valid_until": c.valid_until.isoformat(),
                "state": c.state,
            }
            for c in issued
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table("id", "subject", "criteria", "evidence", "format", "state")
    for c in issued:
        table.add_row(c.id, c.subject_name, ", ".join(c.criteria), c.evidence, c.format, c.state)
    console.print(table)


def _change(credential_id: str, action: str, reason: str) -> None:
    with _home() as home:
        info = home.credentials.change_status(credential_id, action, reason=reason)
    console.print(
        f"credential {info.id}: [bold]{info.state}[/]; status list re-signed", markup=True
    )


ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]


@credential_app.command("revoke")
def revoke(credential_id: str, reason: ReasonOpt = "") -> None:
    """Revoke a credential this home issued (final): its revocation bit is set."""
    _change(credential_id, "revoke", reason)


@credential_app.command("suspend")
def suspend(credential_id: str, reason: ReasonOpt = "") -> None:
    """Suspend a credential this home issued (until resumed)."""
    _change(credential_id, "suspend", reason)


@credential_app.command("resume")
def resume(credential_id: str, reason: ReasonOpt = "") -> None:
    """Lift the suspension of a credential this home issued."""
    _change(credential_id, "resume", reason)


@credential_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="A credential or presentation.")],
    audience: ChallengeAudience = None,
    nonce: ChallengeNonce = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Verify a credential or presentation with this home's trust (resolver, lists, status)."""
    token = _token(file)
    with _home() as home:
        verdict = home.credentials.verifier().verify(
            token, at=home.now(), audience=audience, nonce=nonce, source=str(file)
        )
    if as_json:
        console.print_json(verdict.model_dump_json())
        return
    credential = verdict.credential
    console.print(
        f"[green]valid[/] {verdict.format} {escape(credential.id)}: "
        f"{escape(credential.issuer.name)} "
        f"vouches ({escape(credential.evidence.kind)}) for {escape(credential.subject.name)}",
        markup=True,
    )
    for claim in credential.claims:
        console.print(f"  {claim.characteristic}: {claim.criterion} = {claim.value!r}")
    for reason in verdict.reasons:
        console.print(f"  [dim]- {escape(reason)}[/]", markup=True)


@credential_app.command("present")
def present(
    file: Annotated[Path, typer.Argument(help="A credential this holder holds.")],
    key: Annotated[Path, typer.Option("--key", help="The holder's key (the one in cnf).")],
    audience: VerifierAudience,
    nonce: VerifierNonce,
    out: Annotated[Path, typer.Option("--out", help="Where to write the presentation.")],
    disclose: Annotated[
        list[str] | None,
        typer.Option(
            "--disclose",
            help="SD-JWT: a claim to disclose (repeat; all by default), e.g. "
            "credentialSubject.claims[0]. --disclose none discloses nothing optional.",
        ),
    ] = None,
    key_passphrase_env: Annotated[
        str | None, typer.Option("--key-passphrase-env", help="Variable with the passphrase.")
    ] = None,
) -> None:
    """Present a credential to a verifier, bound to its audience and nonce."""
    from datetime import UTC, datetime

    from trustbridge.credentials.formats import present as make_presentation

    token = _token(file)
    chosen = None if disclose is None else [d for d in disclose if d != "none"]
    presentation = make_presentation(
        token,
        holder=_holder_signer(key, key_passphrase_env),
        audience=audience,
        nonce=nonce,
        issued_at=datetime.now(UTC),
        disclose=chosen,
    )
    _write(out, presentation)
    console.print(f"presentation for {audience} -> {out}")


@credential_app.command("package")
def package(
    audience: VerifierAudience,
    nonce: VerifierNonce,
    out: Annotated[Path, typer.Option("--out", help="Where to write the package.")],
    credential_ids: Annotated[
        list[str] | None,
        typer.Option("--credential", help="A wallet credential id to present (default: all)."),
    ] = None,
    suppliers: Annotated[
        list[Path] | None,
        typer.Option(
            "--supplier",
            help="A package one of our suppliers made for the same audience and nonce (tier 2).",
        ),
    ] = None,
) -> None:
    """Present the wallet's credentials to a verifier in one package signed by this home's
    organization identity (what `trustbridge assess` reads)."""
    supplier_tokens = [_token(path) for path in suppliers or []]
    with _home() as home:
        token = home.credentials.package(
            audience=audience,
            nonce=nonce,
            credential_ids=credential_ids,
            suppliers=supplier_tokens,
        )
        count = len(credential_ids) if credential_ids else len(home.credentials.held_list())
    _write(out, token)
    console.print(
        f"package of {count} presentation(s) and {len(supplier_tokens)} supplier package(s) "
        f"for {audience} -> {out}"
    )


@credential_app.command("store")
def store(
    file: Annotated[Path, typer.Argument(help="A credential about this home's organization.")],
) -> None:
    """Verify a credential and keep it in this home's wallet (to present to partners)."""
    token = _token(file)
    with _home() as home:
        verifier = home.credentials.verifier()
        held = home.credentials.store(
            token,
            lambda t: verifier.verify(t, at=home.now(), source=str(file)),
            source=str(file),
        )
    console.print(f"stored {held.id} ({', '.join(held.criteria)}) from {held.issuer_name}")


@profile_app.command("show")
def show(
    subject: Annotated[
        str, typer.Argument(help="Subject id (URN, globalAssetId) or organization identifier.")
    ],
    files: Annotated[
        list[Path] | None,
        typer.Option("--credential", help="Credential files (default: this home's wallet)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    aas: Annotated[
        Path | None, typer.Option("--aas", help="Also export as an AAS submodel (JSON) here.")
    ] = None,
) -> None:
    """The trustworthiness profile of SUBJECT, from verified credentials."""
    from trustbridge.credentials.aas import to_json as aas_json
    from trustbridge.credentials.model import issuer_id_for
    from trustbridge.credentials.profile import TrustProfile

    subject_id = subject if ":" in subject else issuer_id_for(subject)
    with _home() as home:
        if files:
            tokens = [(str(f), _token(f)) for f in files]
        else:
            tokens = [(f"wallet:{h.id}", h.token) for h in home.credentials.held_list()]
        verifier = home.credentials.verifier()
        at = home.now()
        verdicts = []
        refused: list[dict[str, str]] = []
        for source, token in tokens:
            # A credential that fails (revoked, expired, issuer no longer trusted) is left out
            # of the profile and reported, never counted.
            try:
                verdicts.append(verifier.verify(token, at=at, source=source))
            except CredentialError as exc:
                refused.append(
                    {"source": source, "error": type(exc).__name__, "reason": exc.message}
                )
    profile = TrustProfile.from_verdicts(subject_id, verdicts, at=at)
    if aas is not None:
        _write(aas, aas_json(profile))
    if as_json:
        console.print_json(json.dumps({**profile.to_json(), "refused": refused}))
        return
    for left_out in refused:
        err.print(f"[yellow]left out[/] {escape(left_out['reason'])}", markup=True)
    console.print(
        f"[bold]{escape(profile.subject.name)}[/] ({escape(profile.subject.id)})", markup=True
    )
    for characteristic, claims in profile.by_characteristic().items():
        if not claims:
            console.print(f"  {characteristic}: [yellow]no claims[/]", markup=True)
            continue
        for item in claims:
            console.print(
                f"  {characteristic}: {item.claim.criterion} = {item.claim.value!r} "
                f"({item.evidence}, {item.issuer.name})"
            )
