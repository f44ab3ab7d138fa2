"""What the command's modules share: consoles, reading files, holders' keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.console import Console

from trustbridge.errors import InputError
from trustbridge.home import Home
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner

__all__ = [
    "ChallengeAudience",
    "ChallengeNonce",
    "VerifierAudience",
    "VerifierNonce",
    "_holder_signer",
    "_home",
    "_load_cert",
    "_load_certs",
    "_parse_time",
    "_prompt",
    "_read",
    "console",
    "err",
    "state",
]


# A presentation's challenge. The holder's side takes the verifier's (required); the verifier's
# side, checking a presentation, the one it gave (both or neither).
VerifierAudience = Annotated[str, typer.Option("--audience", help="The verifier's audience.")]
VerifierNonce = Annotated[str, typer.Option("--nonce", help="The verifier's nonce.")]
ChallengeAudience = Annotated[
    str | None, typer.Option("--audience", help="Our audience (who we are), for a presentation.")
]
ChallengeNonce = Annotated[
    str | None, typer.Option("--nonce", help="The nonce we gave, for a presentation.")
]

# Markup only where a call asks for it (markup=True, untrusted text escaped): a certificate's
# subject or a partner's message with "[/x]" in it must print as written, never crash.
console = Console(markup=False)
err = Console(stderr=True, markup=False)


class _State:
    home_path: Path = Path(".trustbridge")


#: Set by the command's callback (``--home``).
state = _State()


@contextmanager
def _home() -> Iterator[Home]:
    home = Home.open(state.home_path, prompt=_prompt)
    try:
        yield home
    finally:
        home.close()


def _parse_time(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what} {text!r} is not an ISO 8601 time", hint="for example 2026-11-20T08:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise InputError(f"{what} {text!r} needs a time zone", hint="append Z for UTC")
    return value


def _prompt(question: str) -> str:
    if not sys.stdin.isatty():
        return ""
    return str(typer.prompt(question, hide_input=True, default="", show_default=False))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def _load_cert(path: Path) -> x509.Certificate:
    data = _read(path, "certificate")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InputError(f"{path} is not a readable X.509 certificate: {exc}") from None


def _load_certs(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate bundle")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InputError(f"{path} is not a PEM certificate bundle: {exc}") from None


def _holder_signer(key_path: Path, passphrase_env: str | None) -> FileSigner:
    """A holder's own key (officer, requester, enrolment credential) from a PEM file."""
    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    data = _read(key_path, "key")
    if b"ENCRYPTED" in data and not passphrase:
        answer = _prompt(f"Passphrase for {key_path}")
        passphrase = answer.encode() if answer else None
    return FileSigner(load_private_key_pem(data, passphrase, source=str(key_path)), str(key_path))
