"""Cross-certificates: a CA certifies another domain's CA, mapping its levels onto the other's.

The bridge construction of the paper, in RFC 5280 terms. In a cross-certificate the issuer
states which of its own policies (levels) it considers equivalent to which policies of the
subject's domain (``policyMappings``: issuerDomainPolicy -> subjectDomainPolicy), and may
restrict the subject's domain further: ``nameConstraints``, ``policyConstraints``
(requireExplicitPolicy, inhibitPolicyMapping) and ``inhibitAnyPolicy``. The certificate
carries the issuer's domain policies in ``certificatePolicies``; path validation then carries
them across the mapping into the subject's domain.

``cryptography`` has no class for ``policyMappings``; it is DER-encoded with ``asn1crypto`` and
added as an unrecognized extension, which every RFC 5280 validator reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, LimitError
from trustbridge.pki.ca import (
    _CA_KEY_USAGE,
    CertificateAuthority,
    NameConstraintsSpec,
    random_serial,
)
from trustbridge.pki.keys import hash_for

__all__ = [
    "ANY_POLICY",
    "CrossCertificateSpec",
    "PolicyMapping",
    "cross_certify",
    "policy_mappings_extension",
    "policy_mappings_of",
    "self_issued_rollover",
]

ANY_POLICY = x509.ObjectIdentifier("2.5.29.32.0")


@dataclass(frozen=True)
class PolicyMapping:
    """``issuer_domain`` (a level of the issuer's scheme) is equivalent to ``subject_domain``."""

    issuer_domain: x509.ObjectIdentifier
    subject_domain: x509.ObjectIdentifier

    def __post_init__(self) -> None:
        # RFC 5280 4.2.1.5: policies SHALL NOT be mapped either to or from anyPolicy.
        if ANY_POLICY in (self.issuer_domain, self.subject_domain):
            raise InputError("anyPolicy cannot be mapped to or from (RFC 5280 4.2.1.5)")


@dataclass(frozen=True)
class CrossCertificateSpec:
    """What a cross-certificate says beyond the subject's name and key."""

    mappings: tuple[PolicyMapping, ...]
    #: Issuer-domain policies asserted without a mapping (the subject shares them as they are).
    shared_policies: tuple[x509.ObjectIdentifier, ...] = ()
    name_constraints: NameConstraintsSpec | None = None
    #: ``policyConstraints``: certificates after this one before an explicit policy is required.
    require_explicit_policy: int | None = None
    #: ``policyConstraints``: certificates after this one before mapping is no longer allowed.
    inhibit_policy_mapping: int | None = None
    #: ``inhibitAnyPolicy``: certificates after this one before anyPolicy stops matching.
    inhibit_any_policy: int | None = None
    #: ``pathLenConstraint`` of the cross-certificate (None: unlimited).
    path_length: int | None = None
    #: Where the subject CA publishes the CA certificates it issued (SIA caRepository).
    subject_repository_url: str | None = None
    extra_extensions: tuple[x509.Extension[x509.ExtensionType], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.mappings and not self.shared_policies:
            raise InputError("a cross-certificate needs at least one policy mapping or policy")
        for name in ("require_explicit_policy", "inhibit_policy_mapping", "inhibit_any_policy"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InputError(f"{name.replace('_', ' ')} must not be negative ({value})")
        if self.path_length is not None and self.path_length < 0:
            raise InputError(f"path length {self.path_length} must not be negative")

    @property
    def issuer_policies(self) -> tuple[x509.ObjectIdentifier, ...]:
        """The policies the certificate asserts: mapped issuer-domain policies and shared ones."""
        seen: dict[str, x509.ObjectIdentifier] = {}
        for oid in [m.issuer_domain for m in self.mappings] + list(self.shared_policies):
            seen.setdefault(oid.dotted_string, oid)
        return tuple(seen.values())


def policy_mappings_extension(mappings: Iterable[PolicyMapping]) -> x509.UnrecognizedExtension:
    """The ``policyMappings`` extension (RFC 5280 4.2.1.5), DER-encoded with asn1crypto."""
    value = asn1_x509.PolicyMappings(
        [
            {
                "issuer_domain_policy": m.issuer_domain.dotted_string,
                "subject_domain_policy": m.subject_domain.dotted_string,
            }
            for m in mappings
        ]
    )
    return x509.UnrecognizedExtension(ExtensionOID.POLICY_MAPPINGS, value.dump())


def policy_mappings_of(certificate: x509.Certificate) -> tuple[PolicyMapping, ...]:
    """The mappings a certificate declares (empty where it has none)."""
    try:
        ext = certificate.extensions.get_extension_for_oid(ExtensionOID.POLICY_MAPPINGS)
    except x509.ExtensionNotFound:
        return ()
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover
        raise InputError(
            f"cannot read the policyMappings of {certificate.subject.rfc4514_string()}"
        )
    raw = value.value
    return tuple(
        PolicyMapping(
            x509.ObjectIdentifier(m["issuer_domain_policy"].dotted),
            x509.ObjectIdentifier(m["subject_domain_policy"].dotted),
        )
        for m in asn1_x509.PolicyMappings.load(raw)
    )


def _ski(certificate: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())


def cross_certify(
    issuer: CertificateAuthority,
    subject: x509.Certificate,
    spec: CrossCertificateSpec,
    *,
    at: datetime,
    lifetime: timedelta,
    serial: int | None = None,
) -> x509.Certificate:
    """Certify ``subject`` (another domain's CA: its name and key) from ``issuer``.

    The subject key identifier is the subject's own, so certificates the subject issued chain
    through the cross-certificate exactly as through its self-signed one.
    """
    at = ensure_utc(at)
    issuer.check_usable(at)
    try:
        constraints = subject.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise InputError(
            f"{subject.subject.rfc4514_string()} is not a CA certificate and cannot be "
            "cross-certified"
        )
    if subject.subject == issuer.name and subject.public_key() == issuer.signer.public_key:
        raise InputError("a CA cannot cross-certify itself; use self_issued_rollover for rollover")
    unknown = [o for o in spec.issuer_policies if o not in issuer.limits.levels]
    if unknown:
        raise LimitError(
            "the cross-certificate asserts policies the issuer does not hold: "
            + ", ".join(o.dotted_string for o in unknown),
            hint="map from the issuer's own levels: "
            + ", ".join(o.dotted_string for o in issuer.limits.levels),
        )
    if lifetime <= timedelta(0):
        raise InputError(f"lifetime {lifetime} must be positive")
    not_after = min(at + lifetime, issuer.not_after)
    extensions: list[x509.Extension[x509.ExtensionType]] = [
        _ext(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True),
        _ext(_CA_KEY_USAGE, critical=True),
        _ext(_ski(subject), critical=False),
        _ext(_authority_key_identifier(issuer), critical=False),
        _ext(
            x509.CertificatePolicies(
                [x509.PolicyInformation(o, None) for o in spec.issuer_policies]
            ),
            critical=False,
        ),
    ]
    if spec.mappings:
        # RFC 5280 4.2.1.5: conforming CAs SHOULD mark this extension as critical.
        extensions.append(_ext(policy_mappings_extension(spec.mappings), critical=True))
    if spec.require_explicit_policy is not None or spec.inhibit_policy_mapping is not None:
        extensions.append(
            _ext(
                x509.PolicyConstraints(
                    require_explicit_policy=spec.require_explicit_policy,
                    inhibit_policy_mapping=spec.inhibit_policy_mapping,
                ),
                critical=True,
            )
        )
    if spec.inhibit_any_policy is not None:
        extensions.append(_ext(x509.InhibitAnyPolicy(spec.inhibit_any_policy), critical=True))
    name_constraints = spec.name_constraints.extension() if spec.name_constraints else None
    if name_constraints is not None:
        extensions.append(_ext(name_constraints, critical=True))
    extensions += [_ext(e, critical=False) for e in issuer.endpoints.extensions()]
    if spec.subject_repository_url:
        extensions.append(_ext(_repository(spec.subject_repository_url), critical=False))
    extensions += spec.extra_extensions
    builder = x509.CertificateBuilder(
        issuer_name=issuer.name,
        subject_name=subject.subject,
        public_key=subject.public_key(),
        serial_number=serial or random_serial(),
        not_valid_before=at,
        not_valid_after=not_after,
        extensions=extensions,
    )
    return builder.sign(issuer.signer.private_key, hash_for(issuer.signer.key_type))


def self_issued_rollover(
    old: CertificateAuthority,
    new: CertificateAuthority,
    *,
    at: datetime,
    lifetime: timedelta | None = None,
) -> tuple[x509.Certificate, x509.Certificate]:
    """Key rollover of a root or bridge: (old-with-new, new-with-old) self-issued certificates.

    ``old-with-new`` carries the old key signed by the new one (relying parties that already
    hold the new self-signed certificate can still validate what the old key issued);
    ``new-with-old`` carries the new key signed by the old one (relying parties that hold only
    the old anchor reach certificates the new key issues). Both name the CA as subject and
    issuer (RFC 5280 6.1: self-issued, not counted in path lengths).
    """
    if old.name != new.name:
        raise InputError(
            "a rollover keeps the CA's name: "
            f"{old.name.rfc4514_string()} != {new.name.rfc4514_string()}"
        )
    at = ensure_utc(at)

    def link(issuer: CertificateAuthority, subject: CertificateAuthority) -> x509.Certificate:
        not_after = min(
            issuer.not_after,
            subject.not_after,
            at + lifetime if lifetime is not None else subject.not_after,
        )
        extensions: list[x509.Extension[x509.ExtensionType]] = [
            _ext(
                x509.BasicConstraints(ca=True, path_length=subject.limits.path_length),
                critical=True,
            ),
            _ext(_CA_KEY_USAGE, critical=True),
            _ext(_ski(subject.certificate), critical=False),
            _ext(_authority_key_identifier(issuer), critical=False),
            _ext(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(o, None) for o in subject.limits.policy_oids]
                ),
                critical=False,
            ),
            *[_ext(e, critical=False) for e in issuer.endpoints.extensions()],
        ]
        return x509.CertificateBuilder(
            issuer_name=issuer.name,
            subject_name=subject.name,
            public_key=subject.signer.public_key,
            serial_number=random_serial(),
            not_valid_before=at,
            not_valid_after=not_after,
            extensions=extensions,
        ).sign(issuer.signer.private_key, hash_for(issuer.signer.key_type))

    return link(new, old), link(old, new)


def _authority_key_identifier(issuer: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer.certificate))


def _repository(url: str) -> x509.SubjectInformationAccess:
    return x509.SubjectInformationAccess(
        [
            x509.AccessDescription(
                x509.oid.SubjectInformationAccessOID.CA_REPOSITORY,
                x509.UniformResourceIdentifier(url),
            )
        ]
    )


def _ext(value: x509.ExtensionType, *, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)
