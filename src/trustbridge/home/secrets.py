"""Resolving key passphrases and token PINs: protected file, environment, or a prompt."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from trustbridge.errors import ConfigError, PassphraseError
from trustbridge.home.config import SecretSource

__all__ = ["Prompt", "resolve_secret", "write_secret_file"]

#: Asks a person for a secret; receives the question, returns the answer.
Prompt = Callable[[str], str]


def _env_name(slug: str) -> str:
    return "TRUSTBRIDGE_PASSPHRASE_" + "".join(c if c.isalnum() else "_" for c in slug).upper()


def resolve_secret(
    slug: str,
    source: SecretSource | None,
    *,
    home: Path,
    prompt: Prompt | None,
    what: str | None = None,
) -> bytes:
    """The passphrase or PIN for key ``slug``; with ``what`` (``fetch proxy user 'x'``), the
    password of what it names (errors and the prompt say so).

    Order: the protected file the configuration names, the environment variable it names,
    ``TRUSTBRIDGE_PASSPHRASE_<SLUG>``, then a prompt where one is available.
    """
    source = source or SecretSource()
    for_, kind = (what, "password") if what else (f"key {slug}", "passphrase")
    if source.file:
        path = home / source.file
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"{kind} file {path} for {for_} does not exist") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{kind} file {path} for {for_} is readable by others",
                hint=f"chmod 600 {path}",
            )
        try:
            secret = path.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            # Never the exception's text: a decoding error quotes the secret's bytes.
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise ConfigError(f"{kind} file {path} for {for_} cannot be read: {why}") from None
        if not secret:
            raise PassphraseError(f"{kind} file {path} for {for_} is empty")
        return secret.encode()
    for name in (source.env, _env_name(slug)):
        if name and os.environ.get(name):
            return os.environ[name].encode()
    if prompt is not None:
        answer = prompt(f"Password for {what}" if what else f"Passphrase for key {slug}")
        if answer:
            return answer.encode()
    # Only where something could ask: a command that never prompts says nothing of terminals.
    ask = ", or run in a terminal to be asked" if prompt is not None else ""
    raise PassphraseError(
        f"no {kind} for {for_}",
        hint=f"set {source.env or _env_name(slug)} or name a protected file in the home's "
        f"[secrets] section{ask}",
    )


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret to a file only its owner can read (refuses to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
