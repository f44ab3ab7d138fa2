"""RFC 5280 path validation with policy processing, through pyhanko-certvalidator."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.policy_decl import PKIXValidationParams

from trustbridge.clock import ensure_utc
from trustbridge.errors import ValidationError

__all__ = [
    "RevocationMode",
    "ValidatedPath",
    "ValidationParams",
    "validate_path",
    "validate_path_async",
]


class RevocationMode(enum.StrEnum):
    """How revocation data is treated. ``REQUIRE`` is the default and fails closed."""

    REQUIRE = "require"
    HARD_FAIL = "hard-fail"
    #: Passes when no revocation data is at hand. Only for callers that check status otherwise
    #: (a home consulting its own database, say).
    UNSAFE_SOFT_FAIL = "soft-fail"


@dataclass(frozen=True)
class ValidationParams:
    """What a relying party asks of a path."""

    at: datetime
    #: Acceptable policies in the relying party's domain; empty means any policy.
    acceptable_policies: frozenset[str] = frozenset()
    require_explicit_policy: bool = True
    revocation: RevocationMode = RevocationMode.REQUIRE
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", ensure_utc(self.at))


@dataclass(frozen=True)
class ValidatedPath:
    """A valid path, anchor first, and the policies it validated for."""

    certificates: tuple[x509.Certificate, ...]
    #: (issuer-domain policy as on the leaf, relying-party-domain policy) pairs.
    policies: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[-1]

    @property
    def user_policies(self) -> frozenset[str]:
        return frozenset(user for _, user in self.policies)


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def validate_path(
    leaf: x509.Certificate,
    *,
    intermediates: Iterable[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    params: ValidationParams,
) -> ValidatedPath:
    """Build and validate a path from ``leaf`` to one of ``anchors``, or raise ValidationError.

    For callers without a running event loop; inside one, await :func:`validate_path_async`.
    """
    return asyncio.run(
        validate_path_async(leaf, intermediates=intermediates, anchors=anchors, params=params)
    )


async def validate_path_async(
    leaf: x509.Certificate,
    *,
    intermediates: Iterable[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    params: ValidationParams,
) -> ValidatedPath:
    """:func:`validate_path` for code that runs in an event loop."""
    if not anchors:
        raise ValidationError("no trust anchors configured: nothing can validate")
    subject = leaf.subject.rfc4514_string()
    try:
        context = ValidationContext(
            trust_roots=[_asn1(a) for a in anchors],
            other_certs=[_asn1(c) for c in intermediates],
            moment=params.at,
            allow_fetching=False,
            revocation_mode=params.revocation.value,
            crls=list(params.crls),
            ocsps=list(params.ocsps),
        )
        pkix = PKIXValidationParams(
            user_initial_policy_set=params.acceptable_policies or frozenset({"any_policy"}),
            initial_explicit_policy=params.require_explicit_policy,
        )
        validator = CertificateValidator(_asn1(leaf), validation_context=context, pkix_params=pkix)
        path = await validator.async_validate_path()
    except RevokedError as exc:
        raise ValidationError(f"certificate {subject} is revoked: {exc}") from None
    except (PathBuildingError, PathValidationError, InvalidCertificateError) as exc:
        raise ValidationError(f"certificate {subject} does not validate: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"validation input for {subject} is malformed: {exc}") from None
    chain = tuple(x509.load_der_x509_certificate(c.dump()) for c in path.iter_certs(True))
    qualified = path.qualified_policies() or frozenset()
    return ValidatedPath(
        certificates=chain,
        policies=frozenset((q.issuer_domain_policy_id, q.user_domain_policy_id) for q in qualified),
    )
