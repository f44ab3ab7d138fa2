"""RFC 5280 path validation with policy processing, through pyhanko-certvalidator.

Two entry points:

- :func:`validate_chain` validates exactly the path it is given, trust anchor first. A path
  builder (:mod:`trustbridge.trust.paths`) calls it once per candidate path.
- :func:`validate_path` lets pyhanko build a path from a pool of certificates and validates it.

Both take the RFC 5280 initial inputs as a :class:`ValidationParams`, report the outcome of
policy processing in a :class:`ValidatedPath`, and raise :class:`PathValidationError`, whose
:attr:`~PathValidationError.kind` says what failed.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeAlias

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as pv_errors
from pyhanko_certvalidator._state import ValProcState
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.path import QualifiedPolicy, ValidationPath
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy, PKIXValidationParams
from pyhanko_certvalidator.util import ConsList
from pyhanko_certvalidator.validate import intl_validate_path

from trustbridge.clock import ensure_utc
from trustbridge.errors import ValidationError

__all__ = [
    "ANY_POLICY",
    "CertificateInput",
    "FailureKind",
    "PathValidationError",
    "PolicyNotice",
    "RevocationMode",
    "ValidPolicy",
    "ValidatedPath",
    "ValidationParams",
    "validate_chain",
    "validate_chain_async",
    "validate_path",
    "validate_path_async",
]

#: The anyPolicy OID (RFC 5280 4.2.1.4).
ANY_POLICY = "2.5.29.32.0"
#: A certificate, or its DER encoding: cryptography refuses to load a few valid certificates
#: (a DSA key that inherits its parameters from the issuer, RFC 3279 2.3.2), pyhanko does not.
CertificateInput: TypeAlias = x509.Certificate | bytes
#: How asn1crypto, and so pyhanko, spells anyPolicy.
_PYHANKO_ANY_POLICY = "any_policy"
#: The prefix of pyhanko's messages; ours name the certificate instead.
_PYHANKO_PREFIX = "The path could not be validated because "
#: What :attr:`ValidationParams.allow_weak_algorithms` lets through: SHA-1 and 1024-bit DSA.
_WEAK_ALGORITHMS = DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
    weak_hash_algos=frozenset({"md2", "md5"}), dsa_key_size_threshold=1024
)


class RevocationMode(enum.StrEnum):
    """How revocation data is treated. ``REQUIRE`` is the default and fails closed."""

    #: Every certificate of the path needs current revocation information.
    REQUIRE = "require"
    #: Certificates that declare a CRL distribution point or an OCSP responder need current
    #: revocation information; the others pass unchecked.
    HARD_FAIL = "hard-fail"
    #: Passes when no revocation data is at hand. Only for callers that check status otherwise
    #: (a home consulting its own database, say).
    UNSAFE_SOFT_FAIL = "soft-fail"


@dataclass(frozen=True)
class ValidationParams:
    """What a relying party asks of a path: the initial inputs of RFC 5280 6.1.1."""

    #: The time of validation; a naive datetime is taken as UTC.
    at: datetime
    #: user-initial-policy-set: acceptable policies in the relying party's domain, as dotted
    #: OIDs. Empty (or :data:`ANY_POLICY`) means any policy.
    acceptable_policies: frozenset[str] = frozenset()
    #: initial-explicit-policy: the path must be valid for at least one acceptable policy.
    require_explicit_policy: bool = True
    revocation: RevocationMode = RevocationMode.REQUIRE
    #: CRLs (DER) that serve as revocation information.
    crls: tuple[bytes, ...] = ()
    #: OCSP responses (DER) that serve as revocation information.
    ocsps: tuple[bytes, ...] = ()
    #: initial-policy-mapping-inhibit: policy mappings in the path are not honoured.
    initial_policy_mapping_inhibit: bool = False
    #: initial-any-policy-inhibit: anyPolicy in a certificate does not match other policies.
    initial_any_policy_inhibit: bool = False
    #: Unsafe: accept SHA-1 signatures and 1024-bit DSA keys. Only for conformance suites
    #: (NIST PKITS) that were issued with them.
    allow_weak_algorithms: bool = False
    #: Point-in-time validation of something signed in the past (a logged statement): revocation
    #: information issued after ``at`` counts, so a CRL of today that lists the certificate as
    #: revoked after ``at`` (or not at all) shows it was good then; one revoked before fails.
    retroactive_revocation: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", ensure_utc(self.at))
        object.__setattr__(self, "acceptable_policies", frozenset(self.acceptable_policies))
        object.__setattr__(self, "crls", tuple(self.crls))
        object.__setattr__(self, "ocsps", tuple(self.ocsps))


class ValidPolicy(NamedTuple):
    """A policy the path is valid for (RFC 5280 6.1.5 (g)), named in both domains.

    The two differ where a CA in the path maps policies (a bridge's cross-certificate, say).
    """

    #: The policy as the end entity's issuer names it, that is as it appears on the leaf.
    issuer_domain: str
    #: The equivalent policy in the trust anchor's, that is the relying party's, domain.
    user_domain: str


class PolicyNotice(NamedTuple):
    """A user notice (RFC 5280 4.2.1.4) that the path attaches to a valid policy."""

    #: The valid policy, in the relying party's domain, that the notice belongs to.
    user_domain: str
    #: The notice's explicit text, to be shown to the user.
    text: str


@dataclass(frozen=True)
class ValidatedPath:
    """A valid path, trust anchor first, and the policies it validated for."""

    #: The certificates of the path, DER, trust anchor first and end entity last.
    der: tuple[bytes, ...]
    #: The policies valid for the end entity; empty where no explicit policy was required and
    #: the path asserts none.
    policies: frozenset[ValidPolicy] = field(default_factory=frozenset)
    #: User notices attached to the valid policies, sorted.
    notices: tuple[PolicyNotice, ...] = ()

    @functools.cached_property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The path, trust anchor first, as cryptography certificates.

        Raises ValueError for a certificate that cryptography cannot load (see
        :data:`CertificateInput`); :attr:`der` always has them.
        """
        return tuple(x509.load_der_x509_certificate(d) for d in self.der)

    @property
    def leaf(self) -> x509.Certificate:
        """The end entity."""
        return self.certificates[-1]

    @property
    def user_policies(self) -> frozenset[str]:
        """The valid policies in the relying party's domain."""
        return frozenset(p.user_domain for p in self.policies)


class FailureKind(enum.StrEnum):
    """What made a path fail, for callers that react differently to each."""

    #: Signature, validity period, name chaining, basic or name constraints, policies, key or
    #: algorithm strength, unknown critical extension, or no path at all.
    PATH = "path"
    #: A certificate of the path is revoked.
    REVOKED = "revoked"
    #: No, or not enough, usable revocation information for a certificate of the path.
    REVOCATION_UNAVAILABLE = "revocation-unavailable"
    #: The revocation information at hand is too old: fetch fresh CRLs or OCSP responses.
    STALE_REVOCATION = "stale-revocation"


class PathValidationError(ValidationError):
    """A path that does not validate, with the kind of failure and the certificate at fault."""

    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind,
        index: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        #: Where :func:`validate_chain` found the fault: the position in the given path of the
        #: certificate at fault (1 = the first one the trust anchor issued). None where unknown.
        self.index = index


# -- conversions, cached by DER: a path builder validates the same certificates many times ----


# asn1crypto parses lazily and its objects are not safe to parse from two threads at once (a
# node validates in worker threads): each thread keeps its own parsed copies.


@functools.lru_cache(maxsize=4096)
def _asn1_certificate_of(der: bytes, _thread: int) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


@functools.lru_cache(maxsize=256)
def _asn1_crl_of(der: bytes, _thread: int) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(der)


@functools.lru_cache(maxsize=512)
def _asn1_ocsp_of(der: bytes, _thread: int) -> asn1_ocsp.OCSPResponse:
    return asn1_ocsp.OCSPResponse.load(der)


def _asn1_certificate(der: bytes) -> asn1_x509.Certificate:
    return _asn1_certificate_of(der, threading.get_ident())


def _asn1_crl(der: bytes) -> asn1_crl.CertificateList:
    return _asn1_crl_of(der, threading.get_ident())


def _asn1_ocsp(der: bytes) -> asn1_ocsp.OCSPResponse:
    return _asn1_ocsp_of(der, threading.get_ident())


def _asn1(certificate: CertificateInput) -> asn1_x509.Certificate:
    if isinstance(certificate, x509.Certificate):
        certificate = certificate.public_bytes(Encoding.DER)
    return _asn1_certificate(certificate)


def _pyhanko_policy(oid: str) -> str:
    return _PYHANKO_ANY_POLICY if oid == ANY_POLICY else oid


def _dotted_policy(name: str) -> str:
    return ANY_POLICY if name == _PYHANKO_ANY_POLICY else name


def _context(
    params: ValidationParams,
    *,
    anchors: Iterable[asn1_x509.Certificate],
    others: Iterable[asn1_x509.Certificate],
) -> ValidationContext:
    # A fresh context per validation: pyhanko caches validated certificates and CRL issuers in
    # it, which must not carry over from one candidate path to another.
    return ValidationContext(
        trust_roots=list(anchors),
        other_certs=list(others),
        moment=params.at,
        allow_fetching=False,
        revocation_mode=params.revocation.value,
        retroactive_revinfo=params.retroactive_revocation,
        crls=[_asn1_crl(c) for c in params.crls],
        ocsps=[_asn1_ocsp(o) for o in params.ocsps],
        # None: pyhanko's default, which refuses SHA-1, RSA keys under 2048 bits and the like.
        algorithm_usage_policy=_WEAK_ALGORITHMS if params.allow_weak_algorithms else None,
    )


def _pkix_params(params: ValidationParams) -> PKIXValidationParams:
    acceptable = frozenset(_pyhanko_policy(p) for p in params.acceptable_policies)
    return PKIXValidationParams(
        user_initial_policy_set=acceptable or frozenset({_PYHANKO_ANY_POLICY}),
        initial_policy_mapping_inhibit=params.initial_policy_mapping_inhibit,
        initial_explicit_policy=params.require_explicit_policy,
        initial_any_policy_inhibit=params.initial_any_policy_inhibit,
    )


def _kind(exc: pv_errors.ValidationError | pv_errors.PathError) -> FailureKind:
    if isinstance(exc, pv_errors.RevokedError):
        return FailureKind.REVOKED
    if isinstance(exc, pv_errors.StaleRevinfoError):
        return FailureKind.STALE_REVOCATION
    if isinstance(exc, pv_errors.InsufficientRevinfoError):
        return FailureKind.REVOCATION_UNAVAILABLE
    return FailureKind.PATH


def _notices(policy: QualifiedPolicy) -> Iterable[PolicyNotice]:
    # RFC 5280 4.2.1.4: only the explicit text is shown; notice references need the CA's
    # notice catalogue, which nobody publishes.
    for qualifier in policy.qualifiers:
        if qualifier["policy_qualifier_id"].native != "user_notice":
            continue
        text = qualifier["qualifier"]["explicit_text"].native
        if text:
            yield PolicyNotice(_dotted_policy(policy.user_domain_policy_id), text)


def _validated(path: ValidationPath) -> ValidatedPath:
    qualified = path.qualified_policies() or frozenset()
    return ValidatedPath(
        der=tuple(c.dump() for c in path.iter_certs(True)),
        policies=frozenset(
            ValidPolicy(
                issuer_domain=_dotted_policy(q.issuer_domain_policy_id),
                user_domain=_dotted_policy(q.user_domain_policy_id),
            )
            for q in qualified
        ),
        notices=tuple(sorted({n for q in qualified for n in _notices(q)})),
    )


def _revocation_sources(path: Sequence[asn1_x509.Certificate], params: ValidationParams) -> None:
    """Fail closed where pyhanko-certvalidator took another CA's CRL as authoritative.

    RFC 5280 6.3.3 (b)(1): a complete CRL covers a certificate when its issuer is the
    certificate's issuer, or the ``cRLIssuer`` its distribution point names (an indirect CRL).
    pyhanko-certvalidator 0.33 also accepts a CRL from any CA whose certificate the
    certificate's issuer signed: in a bridge or a mesh, a revoked cross-certificate then
    validates in ``require`` mode when its issuer's own CRL is withheld and a neighbour's is at
    hand. After pyhanko's checks, every certificate that needs revocation information must have
    a CRL from an authoritative issuer, or an OCSP response for it, among ``params``.
    """
    if params.revocation is RevocationMode.UNSAFE_SOFT_FAIL or len(path) < 2:
        return
    crl_issuers = {_asn1_crl(der)["tbs_cert_list"]["issuer"].hashable for der in params.crls}
    answered: set[tuple[int, bytes]] = set()
    for der in params.ocsps:
        response = _asn1_ocsp(der)
        if response["response_status"].native != "successful":
            continue
        basic = response["response_bytes"]["response"].parsed
        for single in basic["tbs_response_data"]["responses"]:
            cert_id = single["cert_id"]
            answered.add((cert_id["serial_number"].native, cert_id["issuer_key_hash"].native))
    for index in range(1, len(path)):
        certificate = path[index]
        # The extension itself: asn1crypto's crl_distribution_points lists HTTP points only.
        points = certificate.crl_distribution_points_value or []
        declared = bool(len(points) or certificate.ocsp_urls)
        if params.revocation is RevocationMode.HARD_FAIL and not declared:
            continue
        authoritative = {certificate.issuer.hashable}
        for point in points:
            for name in point["crl_issuer"] or []:
                if name.name == "directory_name":
                    authoritative.add(name.chosen.hashable)
        if crl_issuers & authoritative:
            continue
        issuer_key = path[index - 1].public_key.sha1
        if (certificate.serial_number, issuer_key) in answered:
            continue
        role = "end-entity certificate" if index == len(path) - 1 else "CA certificate"
        raise PathValidationError(
            f"{role} '{certificate.subject.human_friendly}' (path position {index}) does not "
            "validate: no CRL from its issuer (nor from a cRLIssuer it names) and no OCSP "
            "response for it; another CA's CRL does not count (RFC 5280 6.3.3)",
            kind=FailureKind.REVOCATION_UNAVAILABLE,
            index=index,
        )


# -- validating a given path --------------------------------------------------------------------


def validate_chain(
    path: Sequence[CertificateInput],
    params: ValidationParams,
    *,
    other_certificates: Iterable[CertificateInput] = (),
) -> ValidatedPath:
    """Validate exactly ``path`` (RFC 5280 6.1), without building any other path.

    ``path`` is ordered trust anchor first, then each certificate issued by the one before,
    end entity last: ``[anchor, intermediate_1, ..., end_entity]``. The anchor is trusted as
    given (its own signature and validity are not checked); it must be followed by at least
    one certificate. ``other_certificates`` may issue revocation information for the path (a
    CA's separate CRL-signing certificate, an indirect CRL issuer); they never join the path.

    Raises :class:`PathValidationError` naming the certificate at fault and the kind of
    failure. For callers without a running event loop; inside one, await
    :func:`validate_chain_async`.
    """
    return asyncio.run(validate_chain_async(path, params, other_certificates=other_certificates))


async def validate_chain_async(
    path: Sequence[CertificateInput],
    params: ValidationParams,
    *,
    other_certificates: Iterable[CertificateInput] = (),
) -> ValidatedPath:
    """:func:`validate_chain` for code that runs in an event loop."""
    if len(path) < 2:
        raise PathValidationError(
            "a path needs its trust anchor followed by at least one certificate, "
            f"got {len(path)} certificate(s)",
            kind=FailureKind.PATH,
        )
    try:
        anchor, *issued = (_asn1(c) for c in path)
        others = [_asn1(c) for c in other_certificates]
    except ValueError as exc:
        raise PathValidationError(
            f"a certificate given for validation is not DER: {exc}", kind=FailureKind.PATH
        ) from None
    context = _context(params, anchors=[anchor], others=[*issued[:-1], *others])
    candidate = ValidationPath(
        trust_anchor=CertTrustAnchor(anchor), interm=issued[:-1], leaf=issued[-1]
    )
    # What async_validate_path() does, with a processing state of our own: after a failure its
    # index is the position of the certificate at fault.
    state = ValProcState(cert_path_stack=ConsList.sing(candidate))
    try:
        await intl_validate_path(context, candidate, state, parameters=_pkix_params(params))
    except (pv_errors.ValidationError, pv_errors.PathError, ValueError, TypeError) as exc:
        raise _chain_failure([anchor, *issued], state.index, exc) from None
    _revocation_sources([anchor, *issued], params)
    return _validated(candidate)


def _chain_failure(
    path: Sequence[asn1_x509.Certificate], index: int, exc: Exception
) -> PathValidationError:
    """Our error for pyhanko's ``exc`` at ``path[index]``, in words that name the certificate."""
    if isinstance(exc, pv_errors.ValidationError | pv_errors.PathError):
        kind = _kind(exc)
        reason = str(exc).removeprefix(_PYHANKO_PREFIX)
    else:
        kind = FailureKind.PATH
        reason = f"it, or its issuer's key, is malformed: {exc}"
    if 0 < index < len(path):
        role = "end-entity certificate" if index == len(path) - 1 else "CA certificate"
        where = f"{role} '{path[index].subject.human_friendly}' (path position {index})"
        return PathValidationError(f"{where} does not validate: {reason}", kind=kind, index=index)
    leaf = path[-1].subject.human_friendly
    return PathValidationError(f"the path to '{leaf}' does not validate: {reason}", kind=kind)


# -- building and validating a path ------------------------------------------------------------


def validate_path(
    leaf: x509.Certificate,
    *,
    intermediates: Iterable[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    params: ValidationParams,
) -> ValidatedPath:
    """Build and validate a path from ``leaf`` to one of ``anchors``.

    Raises :class:`PathValidationError`. For callers without a running event loop; inside
    one, await :func:`validate_path_async`.
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
        raise PathValidationError(
            "no trust anchors configured: nothing can validate", kind=FailureKind.PATH
        )
    subject = leaf.subject.rfc4514_string()
    try:
        context = _context(
            params,
            anchors=[_asn1(a) for a in anchors],
            others=[_asn1(c) for c in intermediates],
        )
        validator = CertificateValidator(
            _asn1(leaf), validation_context=context, pkix_params=_pkix_params(params)
        )
        path = await validator.async_validate_path()
    except (pv_errors.PathError, pv_errors.ValidationError) as exc:
        kind = _kind(exc)
        verdict = "is revoked" if kind is FailureKind.REVOKED else "does not validate"
        raise PathValidationError(f"certificate {subject} {verdict}: {exc}", kind=kind) from None
    except (ValueError, TypeError) as exc:
        raise PathValidationError(
            f"validation input for {subject} is malformed: {exc}", kind=FailureKind.PATH
        ) from None
    _revocation_sources(list(path.iter_certs(True)), params)
    return _validated(path)
