"""The typed errors of trust-profile credentials: each refusal its own class, each message names
the credential (or file) and the problem; security checks fail closed by raising one of these."""

from __future__ import annotations

from trustbridge.errors import InputError, TrustbridgeError

__all__ = [
    "CredentialError",
    "CriterionError",
    "EvidenceNotAllowedError",
    "ExpiredCredentialError",
    "HolderBindingError",
    "MalformedCredentialError",
    "NotAccreditedError",
    "NotYetValidCredentialError",
    "ReplayedPresentationError",
    "RevokedCredentialError",
    "StatusUnavailableError",
    "SuspendedCredentialError",
    "TamperedCredentialError",
    "UnknownCriterionError",
    "UntrustedIssuerError",
    "ValueOutOfRangeError",
    "WrongTypeError",
]


class CredentialError(TrustbridgeError):
    """A credential or presentation that must not be relied on."""

    exit_code = 3

    def __init__(self, message: str, *, source: str = "", hint: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message, hint=hint)
        #: Where the credential came from (a file, a URL, a peer); may be empty.
        self.source = source


class MalformedCredentialError(CredentialError):
    """Not a JWS / SD-JWT, not JSON, or a payload the data model or schema refuses."""


class TamperedCredentialError(CredentialError):
    """The issuer's signature does not verify, or a disclosure is not one the issuer signed."""


class WrongTypeError(CredentialError):
    """A ``typ``, ``vct``, ``@context`` or ``type`` other than the one expected."""


class ExpiredCredentialError(CredentialError):
    """Past ``exp`` / ``validUntil`` (beyond the clock skew)."""


class NotYetValidCredentialError(CredentialError):
    """Before ``nbf`` / ``validFrom`` / ``iat`` (beyond the clock skew)."""


class UntrustedIssuerError(CredentialError):
    """The issuer's ``x5c`` chain does not resolve through the trust resolver."""


class NotAccreditedError(CredentialError):
    """No trust list recognizes the issuer for this criterion and evidence kind at issuance."""


class RevokedCredentialError(CredentialError):
    """The issuer's revocation status list has the credential's bit set."""


class SuspendedCredentialError(CredentialError):
    """The issuer's suspension status list has the credential's bit set."""


class StatusUnavailableError(CredentialError):
    """The status list could not be fetched or verified: fail closed."""


class ReplayedPresentationError(CredentialError):
    """A presentation for another audience or nonce, or too old: a replay."""


class HolderBindingError(CredentialError):
    """The key-binding proof is missing, or not signed by the key the credential binds."""


class CriterionError(InputError):
    """A criterion, value or evidence kind the criteria catalogue refuses."""


class UnknownCriterionError(CriterionError):
    """A criterion identifier the catalogue does not define."""


class ValueOutOfRangeError(CriterionError):
    """A value outside the criterion's value type."""


class EvidenceNotAllowedError(CriterionError):
    """An evidence kind the criterion does not admit (a self-declared SIL, say)."""
