"""The error types of trustbridge, grouped by origin.

Every error a user can meet says what went wrong, with which input, and what to do. The CLI
prints ``diagnostics()`` without a traceback and exits non-zero; the API answers
``application/problem+json``.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "ApprovalError",
    "ConfigError",
    "CsrError",
    "DuplicateError",
    "InputError",
    "KeyStoreError",
    "LimitError",
    "NotFoundError",
    "PassphraseError",
    "ProfileError",
    "ReleaseError",
    "StoreError",
    "TokenUnavailableError",
    "TrustbridgeError",
    "ValidationError",
]


class TrustbridgeError(Exception):
    """Base class of all errors trustbridge raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human-readable explanation, with what to do where we know it."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


# -- input ------------------------------------------------------------------------------------


class InputError(TrustbridgeError):
    """Input that is malformed or names something inconsistent."""

    exit_code = 2


class CsrError(InputError):
    """A PKCS#10 request that cannot be parsed or whose signature does not verify."""


class ProfileError(InputError):
    """A subject field, key type or option that the identity profile forbids."""


class ConfigError(InputError):
    """A home configuration that is missing, malformed or inconsistent."""


# -- policy -----------------------------------------------------------------------------------


class LimitError(TrustbridgeError):
    """A CA asked for something beyond its limits: a kind, a level, a lifetime, its validity."""

    exit_code = 3


class ReleaseError(TrustbridgeError):
    """The release process forbids this step (wrong state, missing approval)."""

    exit_code = 3


class ApprovalError(ReleaseError):
    """An approval that is not acceptable: wrong signer, no officer role, four-eyes violated."""


class ValidationError(TrustbridgeError):
    """A certificate path or signature that does not validate."""

    exit_code = 3


class AuthenticationError(TrustbridgeError):
    """A request whose signature, freshness or caller identity does not check out (HTTP 401)."""

    exit_code = 3


class AccessDeniedError(TrustbridgeError):
    """An authenticated caller without the role an operation needs (HTTP 403)."""

    exit_code = 3


# -- keys -------------------------------------------------------------------------------------


class KeyStoreError(TrustbridgeError):
    """A key that cannot be found, loaded or used."""

    exit_code = 4


class PassphraseError(KeyStoreError):
    """A passphrase or PIN that is missing or wrong."""


class TokenUnavailableError(KeyStoreError):
    """A PKCS#11 module or token that cannot be reached."""


# -- storage ----------------------------------------------------------------------------------


class StoreError(TrustbridgeError):
    """The database cannot be reached or is in an unexpected state."""

    exit_code = 5


class NotFoundError(InputError):
    """A named record (scheme, CA, request, certificate) that does not exist."""


class DuplicateError(InputError):
    """A record that already exists (a scheme, a CA, a pending request for the same key)."""
