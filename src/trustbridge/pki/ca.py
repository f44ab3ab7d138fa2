"""Certificate authorities: root and subordinate CA certificates, and identity issuance.

A :class:`CertificateAuthority` is a value: its certificate, a signer, the limits it was
created with (subject kinds, assurance levels, roles) and the URLs its certificates name. It
issues certificates in memory; recording them is the caller's business.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import NotRequired, TypedDict, Unpack
from urllib.parse import urlsplit

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from trustbridge import oids
from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, LimitError, ProfileError
from trustbridge.pki import der
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.profiles import (
    IdentityProfile,
    PersonSubject,
    Purpose,
    Role,
    Subject,
    SubjectKind,
    key_usage,
    profile_for,
    subject_kind_extension,
)
from trustbridge.pki.signers import Signer, sign_bytes, signature_valid

__all__ = [
    "CaLimits",
    "CertificateAuthority",
    "Endpoints",
    "NameConstraintsSpec",
    "ServiceKind",
    "build_root_certificate",
    "certificate_fingerprint",
    "self_signed_certificate",
    "key_fingerprint",
    "random_serial",
    "url_distribution_point",
]

_SERIAL_BITS = 159  # positive, at most 20 octets (RFC 5280 4.1.2.2), far above 64 bits of entropy


def random_serial() -> int:
    """A random positive serial number with 159 bits of entropy."""
    while True:
        serial = secrets.randbits(_SERIAL_BITS)
        if serial >= 1 << 64:
            return serial


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, lowercase hex."""
    return hashlib.sha256(certificate.public_bytes(_DER)).hexdigest()


def key_fingerprint(public_key: CertificatePublicKeyTypes) -> str:
    """SHA-256 over the DER SubjectPublicKeyInfo, lowercase hex."""
    return hashlib.sha256(public_key.public_bytes(_DER, _SPKI)).hexdigest()


_DER = Encoding.DER
_SPKI = PublicFormat.SubjectPublicKeyInfo


def url_distribution_point(url: str) -> x509.DistributionPoint:
    """A distribution point that is just a URL (CRL distribution points, FreshestCRL)."""
    return x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )


@dataclass(frozen=True)
class Endpoints:
    """Where a CA publishes: CRL distribution point, OCSP responder, its own certificate(s)."""

    crl_url: str
    ocsp_url: str
    ca_issuers_url: str
    #: Where delta CRLs are published (named in the full CRLs' FreshestCRL extension).
    delta_crl_url: str | None = None
    #: Where the CA publishes the CA certificates it issued (SIA caRepository of its own
    #: certificate): subordinates and cross-certificates, for forward path discovery.
    repository_url: str | None = None

    @classmethod
    def for_ca(cls, base_url: str, slug: str) -> Endpoints:
        """The conventional URLs of CA ``slug`` on a node whose HTTP base URL is ``base_url``."""
        base = base_url.rstrip("/")
        return cls(
            crl_url=f"{base}/pki/{slug}/crl",
            ocsp_url=f"{base}/pki/{slug}/ocsp",
            ca_issuers_url=f"{base}/pki/{slug}/issuers.p7c",
            delta_crl_url=f"{base}/pki/{slug}/delta-crl",
            repository_url=f"{base}/pki/{slug}/issued.p7c",
        )

    def extensions(self) -> list[x509.ExtensionType]:
        return [
            x509.CRLDistributionPoints([url_distribution_point(self.crl_url)]),
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(self.ocsp_url),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(self.ca_issuers_url),
                    ),
                ]
            ),
        ]


@dataclass(frozen=True)
class NameConstraintsSpec:
    """Optional RFC 5280 name constraints for a subordinate CA."""

    permitted_dns: tuple[str, ...] = ()
    excluded_dns: tuple[str, ...] = ()
    permitted_email: tuple[str, ...] = ()
    permitted_uri: tuple[str, ...] = ()
    permitted_dn: tuple[str, ...] = ()  # RFC 4514 strings such as "C=DE"

    def __post_init__(self) -> None:
        for text in self.permitted_dn:
            try:
                x509.Name.from_rfc4514_string(text)
            except ValueError as exc:
                raise InputError(
                    f"permitted directory name {text!r} is not RFC 4514: {exc}"
                ) from None

    def is_empty(self) -> bool:
        return not any(
            (
                self.permitted_dns,
                self.excluded_dns,
                self.permitted_email,
                self.permitted_uri,
                self.permitted_dn,
            )
        )

    def extension(self) -> x509.NameConstraints | None:
        if self.is_empty():
            return None
        permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in self.permitted_dns]
        permitted += [x509.RFC822Name(e) for e in self.permitted_email]
        permitted += [x509.UniformResourceIdentifier(u) for u in self.permitted_uri]
        permitted += [
            x509.DirectoryName(x509.Name.from_rfc4514_string(d)) for d in self.permitted_dn
        ]
        excluded: list[x509.GeneralName] = [x509.DNSName(d) for d in self.excluded_dns]
        return x509.NameConstraints(
            permitted_subtrees=permitted or None, excluded_subtrees=excluded or None
        )

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> NameConstraintsSpec:
        try:
            nc = certificate.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            return cls()
        permitted = list(nc.permitted_subtrees or [])
        excluded = list(nc.excluded_subtrees or [])
        return cls(
            permitted_dns=tuple(g.value for g in permitted if isinstance(g, x509.DNSName)),
            excluded_dns=tuple(g.value for g in excluded if isinstance(g, x509.DNSName)),
            permitted_email=tuple(g.value for g in permitted if isinstance(g, x509.RFC822Name)),
            permitted_uri=tuple(
                g.value for g in permitted if isinstance(g, x509.UniformResourceIdentifier)
            ),
            permitted_dn=tuple(
                g.value.rfc4514_string() for g in permitted if isinstance(g, x509.DirectoryName)
            ),
        )

    def check(self, subject_name: x509.Name, alt_names: Sequence[x509.GeneralName]) -> None:
        """Refuse names a relying party would reject (RFC 5280 6.1.3 (b))."""
        if self.permitted_dn:
            subject_rdns = list(subject_name.rdns)
            if not any(
                subject_rdns[: len(list(base.rdns))] == list(base.rdns)
                for base in (x509.Name.from_rfc4514_string(d) for d in self.permitted_dn)
            ):
                raise LimitError(
                    f"subject {subject_name.rfc4514_string()} is outside the CA's permitted "
                    f"directory names {list(self.permitted_dn)}"
                )
        for name in alt_names:
            if isinstance(name, x509.DNSName):
                host = name.value.lower()
                if self.permitted_dns and not any(_dns_within(host, d) for d in self.permitted_dns):
                    raise LimitError(f"DNS name {host} is outside the CA's permitted DNS names")
                if any(_dns_within(host, d) for d in self.excluded_dns):
                    raise LimitError(f"DNS name {host} is excluded by the CA's name constraints")
            if (
                isinstance(name, x509.RFC822Name)
                and self.permitted_email
                and not any(_email_within(name.value, e) for e in self.permitted_email)
            ):
                raise LimitError(f"e-mail {name.value} is outside the CA's permitted e-mail names")
            if isinstance(name, x509.UniformResourceIdentifier) and self.permitted_uri:
                uri_host = urlsplit(name.value).hostname
                if uri_host is None or not any(
                    _uri_host_within(uri_host, u) for u in self.permitted_uri
                ):
                    raise LimitError(
                        f"URI {name.value} is outside the CA's permitted URI hosts "
                        f"{list(self.permitted_uri)} (a URI without a host never fits)"
                    )


def _email_within(address: str, constraint: str) -> bool:
    """RFC 5280 4.2.1.10: a mailbox, a host (exact), or ``.domain`` (any host below)."""
    address = address.lower()
    constraint = constraint.lower()
    if "@" in constraint:
        return address == constraint
    host = address.rsplit("@", 1)[-1]
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def _uri_host_within(host: str, constraint: str) -> bool:
    """RFC 5280 4.2.1.10: a host (exact) or ``.domain`` (any host below)."""
    host = host.lower()
    constraint = constraint.lower()
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def _dns_within(host: str, constraint: str) -> bool:
    constraint = constraint.lower().lstrip(".")
    return host == constraint or host.endswith("." + constraint)


@dataclass(frozen=True)
class CaLimits:
    """What a CA may issue: subject kinds (none: it certifies CAs only), levels, roles."""

    levels: tuple[x509.ObjectIdentifier, ...]
    kinds: frozenset[SubjectKind] = frozenset()
    roles: frozenset[Role] = frozenset()
    path_length: int | None = 0

    def __post_init__(self) -> None:
        if not self.levels:
            raise InputError("a CA needs at least one assurance level (certificate policy)")
        if self.roles and self.kinds and SubjectKind.PERSON not in self.kinds:
            raise InputError(
                "only a CA that issues person identities (or certifies CAs) can grant roles"
            )
        if self.path_length is not None and self.path_length < 0:
            raise InputError(f"path length {self.path_length} must not be negative")

    @property
    def policy_oids(self) -> tuple[x509.ObjectIdentifier, ...]:
        return self.levels + tuple(
            sorted((r.oid for r in self.roles), key=lambda o: o.dotted_string)
        )

    def kinds_extension(self) -> x509.UnrecognizedExtension | None:
        """The extension that lists the kinds in the CA certificate itself."""
        if not self.kinds:
            return None
        value = _KindList([asn1.UTF8String(k.value) for k in sorted(self.kinds)])
        return x509.UnrecognizedExtension(oids.EXT_ISSUABLE_KINDS, value.dump())

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> CaLimits:
        """Read the limits back from a CA certificate: the certificate is the source of truth."""
        exts = certificate.extensions
        try:
            constraints = exts.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise InputError(
                f"{certificate.subject.rfc4514_string()} has no basicConstraints: not a CA"
            ) from None
        if not constraints.ca:
            raise InputError(f"{certificate.subject.rfc4514_string()} is not a CA certificate")
        try:
            policies = [
                p.policy_identifier
                for p in exts.get_extension_for_class(x509.CertificatePolicies).value
            ]
        except x509.ExtensionNotFound:
            policies = []
        role_oids = {r.oid: r for r in Role}
        kinds: frozenset[SubjectKind] = frozenset()
        try:
            raw = exts.get_extension_for_oid(oids.EXT_ISSUABLE_KINDS).value
            if isinstance(raw, x509.UnrecognizedExtension):
                kinds = frozenset(SubjectKind(k) for k in _KindList.load(raw.value).native)
        except x509.ExtensionNotFound:
            pass
        return cls(
            levels=tuple(p for p in policies if p not in role_oids),
            kinds=kinds,
            roles=frozenset(role_oids[p] for p in policies if p in role_oids),
            path_length=constraints.path_length,
        )


class _KindList(asn1.SequenceOf):  # type: ignore[misc]
    _child_spec = asn1.UTF8String


def _policies(oids: Sequence[x509.ObjectIdentifier]) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(o, None) for o in oids])


def build_root_certificate(
    *,
    signer: Signer,
    name: x509.Name,
    limits: CaLimits,
    at: datetime,
    lifetime: timedelta,
    serial: int | None = None,
    repository_url: str | None = None,
) -> x509.Certificate:
    """A self-signed root CA certificate carrying the scheme's level policies.

    ``repository_url``: the SIA caRepository where the root publishes what it issued
    (subordinates, cross-certificates), for relying parties that discover paths forward.
    """
    at = ensure_utc(at)
    ski = x509.SubjectKeyIdentifier.from_public_key(signer.public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key)
        .serial_number(serial or random_serial())
        .not_valid_before(at)
        .not_valid_after(at + lifetime)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=limits.path_length), critical=True
        )
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(_policies(limits.policy_oids), critical=False)
    )
    kinds = limits.kinds_extension()
    if kinds is not None:
        builder = builder.add_extension(kinds, critical=False)
    if repository_url:
        builder = builder.add_extension(
            x509.SubjectInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.SubjectInformationAccessOID.CA_REPOSITORY,
                        x509.UniformResourceIdentifier(repository_url),
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signer.private_key, hash_for(signer.key_type))


def self_signed_certificate(
    signer: Signer,
    name: x509.Name,
    *,
    not_before: datetime,
    not_after: datetime,
    ca: bool = False,
    serial: int | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A bare self-signed certificate over ``signer``'s key: a key that relying parties pin
    (a list signer, say) rather than validate through a path, or a certificate nobody issued
    (a stranger's, in tests and the demo). ``extensions`` are (value, critical) pairs added
    after basicConstraints. Signed through the signer."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key)
        .serial_number(serial or random_serial())
        .not_valid_before(ensure_utc(not_before))
        .not_valid_after(ensure_utc(not_after))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(signer.private_key, hash_for(signer.key_type))


_CA_KEY_USAGE = key_usage("digital_signature", "key_cert_sign", "crl_sign")


_END_ENTITY = x509.BasicConstraints(ca=False, path_length=None)


def _extension(value: x509.ExtensionType, *, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


_Extensions = tuple[x509.Extension[x509.ExtensionType], ...]
_ExtensionKey = tuple[IdentityProfile, KeyType, x509.ObjectIdentifier, frozenset[Role]]


@dataclass(frozen=True, eq=False)
class _ExtensionSet:
    """The extensions before and after the key identifiers for one profile, key type, level
    and set of roles, as objects and as DER (the same for every certificate of the set)."""

    head: _Extensions
    tail: _Extensions
    head_der: bytes
    tail_der: bytes


@dataclass(frozen=True)
class _Template:
    """What the certificates of one issuance share."""

    not_before: datetime
    not_after: datetime
    extensions: _ExtensionSet
    #: DER of the validity (RFC 5280 4.1.2.5).
    validity: bytes


#: tbsCertificate's version field: [0] EXPLICIT v3.
_VERSION_3 = bytes.fromhex("a003020102")


class IssueRequest(TypedDict):
    """The arguments of :meth:`CertificateAuthority.issue` (see ``issue_encoded``)."""

    subject: Subject
    public_key: CertificatePublicKeyTypes
    level: x509.ObjectIdentifier
    at: datetime
    purpose: NotRequired[Purpose]
    lifetime: NotRequired[timedelta | None]
    serial: NotRequired[int | None]


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that can sign: its certificate, its key, its limits and its URLs."""

    certificate: x509.Certificate
    signer: Signer
    limits: CaLimits
    endpoints: Endpoints
    #: Certificates above this CA up to and including the root (empty for a root).
    chain: tuple[x509.Certificate, ...] = field(default=())

    @cached_property
    def name(self) -> x509.Name:
        return self.certificate.subject

    @cached_property
    def _aki(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.signer.public_key)

    @cached_property
    def _pointer_extensions(self) -> list[x509.ExtensionType]:
        return self.endpoints.extensions()

    @cached_property
    def _name_constraints(self) -> tuple[NameConstraintsSpec, ...]:
        """The constraints of this CA and of every CA above it (RFC 5280 6.1.3 (b))."""
        specs = (NameConstraintsSpec.from_certificate(c) for c in (self.certificate, *self.chain))
        return tuple(spec for spec in specs if not spec.is_empty())

    def _check_names(self, subject_name: x509.Name, alt_names: Sequence[x509.GeneralName]) -> None:
        for spec in self._name_constraints:
            spec.check(subject_name, alt_names)

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def check_usable(self, at: datetime) -> None:
        """Raise :class:`LimitError` if the CA is expired or not yet valid at ``at``."""
        if at < self.certificate.not_valid_before_utc:
            raise LimitError(
                f"CA {self.name.rfc4514_string()} is not valid before "
                f"{self.certificate.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
            )
        if at >= self.certificate.not_valid_after_utc:
            raise LimitError(
                f"CA {self.name.rfc4514_string()} expired on "
                f"{self.certificate.not_valid_after_utc:%Y-%m-%d %H:%M}Z",
                hint="create a new issuing CA or roll the CA over",
            )

    def _validity(
        self, at: datetime, lifetime: timedelta | None, default: timedelta, maximum: timedelta
    ) -> datetime:
        if lifetime is not None:
            if lifetime <= timedelta(0):
                raise InputError(f"lifetime {lifetime} must be positive")
            if lifetime > maximum:
                raise LimitError(
                    f"lifetime of {lifetime.days} days exceeds the profile's maximum of "
                    f"{maximum.days} days"
                )
            not_after = at + lifetime
            if not_after > self.not_after:
                raise LimitError(
                    f"requested validity until {not_after:%Y-%m-%d} exceeds the CA's own "
                    f"validity (until {self.not_after:%Y-%m-%d})"
                )
            return not_after
        return min(at + default, self.not_after)

    def check_request(
        self,
        *,
        subject: Subject,
        level: x509.ObjectIdentifier,
        key_type: KeyType,
        purpose: Purpose = Purpose.IDENTITY,
    ) -> IdentityProfile:
        """Raise unless this CA may issue ``subject`` at ``level`` with such a key."""
        profile = self._check_limits(subject, level, key_type, purpose)
        if self._name_constraints:
            self._check_names(subject.x509_name(), subject.alt_names())
        return profile

    def _check_limits(
        self,
        subject: Subject,
        level: x509.ObjectIdentifier,
        key_type: KeyType,
        purpose: Purpose,
    ) -> IdentityProfile:
        kind = subject.kind
        if kind not in self.limits.kinds:
            allowed = ", ".join(sorted(self.limits.kinds)) or "CA certificates only"
            raise LimitError(
                f"CA {self.name.rfc4514_string()} does not issue {kind} identities "
                f"(it issues: {allowed})"
            )
        if level not in self.limits.levels:
            raise LimitError(
                f"CA {self.name.rfc4514_string()} is not allowed to issue at level "
                f"{level.dotted_string}"
            )
        profile = profile_for(kind, purpose)
        profile.check_key_type(key_type)
        if isinstance(subject, PersonSubject):
            beyond = subject.roles - self.limits.roles
            if beyond:
                raise LimitError(
                    f"CA {self.name.rfc4514_string()} may not grant the role(s) "
                    f"{', '.join(sorted(beyond))}"
                )
        return profile

    def issue(self, **request: Unpack[IssueRequest]) -> x509.Certificate:
        """Issue an end-entity certificate of ``subject``'s profile at assurance ``level``
        (the arguments of :meth:`issue_encoded`)."""
        return self.issue_encoded(**request)[0]

    def issue_encoded(
        self,
        *,
        subject: Subject,
        public_key: CertificatePublicKeyTypes,
        level: x509.ObjectIdentifier,
        at: datetime,
        purpose: Purpose = Purpose.IDENTITY,
        lifetime: timedelta | None = None,
        serial: int | None = None,
    ) -> tuple[x509.Certificate, bytes]:
        """:meth:`issue`, with the certificate's DER."""
        template = self._checked_template(
            subject, KeyType.of(public_key), level, at, purpose, lifetime
        )
        return self._sign(template, subject, public_key, serial)

    def issue_many(
        self,
        *,
        subjects: Sequence[Subject],
        public_keys: Sequence[CertificatePublicKeyTypes],
        level: x509.ObjectIdentifier,
        at: datetime,
        purpose: Purpose = Purpose.IDENTITY,
        lifetime: timedelta | None = None,
    ) -> list[tuple[x509.Certificate, bytes]]:
        """Issue many certificates of one kind, level and key type (a production batch):
        each certificate with its DER.

        The checks and the constant part of the certificates are done once; every subject is
        still checked against the name constraints.
        """
        if len(subjects) != len(public_keys):
            raise InputError("issue_many needs one public key per subject")
        if not subjects:
            return []
        key_type = KeyType.of(public_keys[0])
        kinds = {s.kind for s in subjects}
        if len(kinds) != 1 or any(KeyType.of(k) is not key_type for k in public_keys):
            raise InputError("issue_many needs subjects of one kind and keys of one type")
        template = self._checked_template(subjects[0], key_type, level, at, purpose, lifetime)
        return [
            self._sign(template, subject, key, None)
            for subject, key in zip(subjects, public_keys, strict=True)
        ]

    def _checked_template(
        self,
        subject: Subject,
        key_type: KeyType,
        level: x509.ObjectIdentifier,
        at: datetime,
        purpose: Purpose,
        lifetime: timedelta | None,
    ) -> _Template:
        """The shared part of certificates for ``subject``'s kind issued ``at``, once this CA
        may issue them (usable, limits, validity)."""
        at = ensure_utc(at)
        self.check_usable(at)
        profile = self._check_limits(subject, level, key_type, purpose)
        not_after = self._validity(at, lifetime, profile.default_lifetime, profile.max_lifetime)
        return self._template(subject, profile, key_type, level, at, not_after)

    def _template(
        self,
        subject: Subject,
        profile: IdentityProfile,
        key_type: KeyType,
        level: x509.ObjectIdentifier,
        at: datetime,
        not_after: datetime,
    ) -> _Template:
        roles = subject.roles if isinstance(subject, PersonSubject) else frozenset()
        return _Template(
            not_before=at,
            not_after=not_after,
            extensions=self._profile_extensions(profile, key_type, level, roles),
            validity=der.sequence(der.time(at), der.time(not_after)),
        )

    @cached_property
    def _extension_sets(
        self,
    ) -> dict[
        tuple[IdentityProfile, KeyType, x509.ObjectIdentifier, frozenset[Role]], _ExtensionSet
    ]:
        return {}

    def _profile_extensions(
        self,
        profile: IdentityProfile,
        key_type: KeyType,
        level: x509.ObjectIdentifier,
        roles: frozenset[Role],
    ) -> _ExtensionSet:
        """The extensions before and after the key identifiers, for one profile, key type,
        level and set of roles: values that depend on nothing else, built once (immutable)."""
        key = (profile, key_type, level, roles)
        cached = self._extension_sets.get(key)
        if cached is not None:
            return cached
        policy_oids = [level, *sorted((r.oid for r in roles), key=lambda o: o.dotted_string)]
        tail: list[x509.ExtensionType] = [
            _policies(policy_oids),
            subject_kind_extension(profile.kind),
        ]
        if profile.extended_key_usage:
            tail.append(x509.ExtendedKeyUsage(list(profile.extended_key_usage)))
        head = (
            _extension(_END_ENTITY, critical=True),
            _extension(profile.key_usage_extension(key_type), critical=True),
        )
        tail_extensions = tuple(_extension(e, critical=False) for e in tail)
        built = _ExtensionSet(
            head=head,
            tail=tail_extensions,
            head_der=b"".join(der.extension(e.value, critical=e.critical) for e in head),
            tail_der=b"".join(der.extension(e.value, critical=e.critical) for e in tail_extensions),
        )
        self._extension_sets[key] = built
        return built

    @cached_property
    def _trailer(self) -> tuple[x509.Extension[x509.ExtensionType], ...]:
        return tuple(_extension(e, critical=False) for e in self._pointer_extensions)

    @cached_property
    def _aki_extension(self) -> x509.Extension[x509.ExtensionType]:
        return _extension(self._aki, critical=False)

    @cached_property
    def _issuer_der(self) -> bytes:
        return self.name.public_bytes()

    @cached_property
    def _aki_der(self) -> bytes:
        return der.extension(self._aki)

    @cached_property
    def _trailer_der(self) -> bytes:
        return b"".join(der.extension(e) for e in self._pointer_extensions)

    @cached_property
    def _composed(self) -> dict[_ExtensionSet, bool]:
        """Extension sets whose certificates this CA puts together itself (True) or leaves
        to ``CertificateBuilder`` (False); see :meth:`_sign`."""
        return {}

    @cached_property
    def _signature_algorithm_der(self) -> bytes | None:
        return der.SIGNATURE_ALGORITHMS.get(self.signer.key_type)

    @cached_property
    def _sign_tbs(self) -> Callable[[bytes], bytes]:
        """Signs a tbsCertificate as the builder signs it (see :func:`sign_bytes`)."""
        key = self.signer.private_key
        algorithm = self._signature_hash
        if isinstance(key, ec.EllipticCurvePrivateKey) and algorithm is not None:
            ecdsa = ec.ECDSA(algorithm)
            return lambda data: key.sign(data, ecdsa)
        return lambda data: sign_bytes(self.signer, data)

    def _sign(
        self,
        template: _Template,
        subject: Subject,
        public_key: CertificatePublicKeyTypes,
        serial: int | None,
    ) -> tuple[x509.Certificate, bytes]:
        """The certificate and its DER."""
        if self._name_constraints:
            self._check_names(subject.x509_name(), subject.alt_names())
        serial = serial or random_serial()
        extensions = template.extensions
        algorithm = self._signature_algorithm_der
        composed = self._composed.get(extensions)
        if algorithm is None or composed is False:
            built = self._build(template, subject, public_key, serial)
            return built, built.public_bytes(Encoding.DER)
        # The certificate put together from DER: what the builder would write, without
        # encoding the extensions the certificates of this set share again (RFC 5280 4.1).
        public_key_der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        tbs = der.sequence(
            _VERSION_3,
            der.integer(serial),
            algorithm,
            self._issuer_der,
            template.validity,
            subject.name_der(),
            public_key_der,
            der.tlv(
                0xA3,
                der.sequence(
                    extensions.head_der,
                    der.key_identifier_extension(public_key_der),
                    self._aki_der,
                    extensions.tail_der,
                    subject.alt_names_der(),
                    self._trailer_der,
                ),
            ),
        )
        if composed is None:
            # The first certificate of a set is built by CertificateBuilder as well: the set
            # is composed from then on only if both agree to the byte, and a signature made
            # the composed way verifies with the CA's key; else it is built.
            built = self._build(template, subject, public_key, serial)
            self._composed[extensions] = built.tbs_certificate_bytes == tbs and signature_valid(
                self.signer.public_key, tbs, self._sign_tbs(tbs)
            )
            return built, built.public_bytes(Encoding.DER)
        encoded = der.certificate(tbs, algorithm, self._sign_tbs(tbs))
        return x509.load_der_x509_certificate(encoded), encoded

    def _build(
        self,
        template: _Template,
        subject: Subject,
        public_key: CertificatePublicKeyTypes,
        serial: int,
    ) -> x509.Certificate:
        """The certificate as ``CertificateBuilder`` makes it."""
        # Extensions in the order RFC 5280 profiles usually show them; the builder is made
        # in one step (chained add_extension calls copy and re-check the list each time).
        extensions = [
            *template.extensions.head,
            _extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False),
            self._aki_extension,
            *template.extensions.tail,
        ]
        alt_names = subject.alt_names()
        if alt_names:
            # RFC 5280 4.2.1.6: critical only when the subject name is empty; ours never is.
            extensions.append(_extension(x509.SubjectAlternativeName(alt_names), critical=False))
        extensions += self._trailer
        builder = x509.CertificateBuilder(
            issuer_name=self.name,
            subject_name=subject.x509_name(),
            public_key=public_key,
            serial_number=serial,
            not_valid_before=template.not_before,
            not_valid_after=template.not_after,
            extensions=extensions,
        )
        return builder.sign(self.signer.private_key, self._signature_hash)

    @cached_property
    def _signature_hash(self) -> hashes.SHA256 | hashes.SHA384 | None:
        """The hash this CA's key signs with (a property of the key: found once)."""
        return hash_for(self.signer.key_type)

    def certify_ca(
        self,
        *,
        subject_name: x509.Name,
        public_key: CertificatePublicKeyTypes,
        limits: CaLimits,
        at: datetime,
        lifetime: timedelta,
        name_constraints: NameConstraintsSpec | None = None,
        serial: int | None = None,
    ) -> x509.Certificate:
        """Issue a subordinate CA certificate restricted to ``limits``."""
        at = ensure_utc(at)
        self.check_usable(at)
        own_path = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if own_path.path_length is not None:
            if own_path.path_length < 1:
                raise LimitError(
                    f"CA {self.name.rfc4514_string()} has path length 0 and cannot certify CAs"
                )
            if limits.path_length is None or limits.path_length > own_path.path_length - 1:
                raise LimitError(
                    f"path length {limits.path_length} exceeds what CA "
                    f"{self.name.rfc4514_string()} allows ({own_path.path_length - 1})"
                )
        beyond = set(limits.levels) - set(self.limits.levels)
        if beyond:
            raise LimitError(
                "subordinate CA asks for levels its parent does not hold: "
                + ", ".join(sorted(o.dotted_string for o in beyond))
            )
        if not limits.roles <= self.limits.roles:
            raise LimitError(
                "subordinate CA asks for roles its parent may not grant: "
                + ", ".join(sorted(limits.roles - self.limits.roles))
            )
        self._check_names(subject_name, [])
        if self.limits.kinds and not limits.kinds <= self.limits.kinds:
            raise LimitError("subordinate CA asks for subject kinds its parent may not issue")
        if lifetime <= timedelta(0):
            raise InputError(f"lifetime {lifetime} must be positive")
        not_after = at + lifetime
        if not_after > self.not_after:
            raise LimitError(
                f"subordinate CA validity until {not_after:%Y-%m-%d} exceeds the parent's "
                f"(until {self.not_after:%Y-%m-%d})"
            )
        key_type = KeyType.of(public_key)
        if key_type is KeyType.RSA2048:
            raise ProfileError("CA keys must be at least RSA-3072, P-256 or Ed25519")
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(serial or random_serial())
            .not_valid_before(at)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=limits.path_length), critical=True
            )
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(_policies(limits.policy_oids), critical=False)
        )
        kinds = limits.kinds_extension()
        if kinds is not None:
            builder = builder.add_extension(kinds, critical=False)
        constraints = name_constraints.extension() if name_constraints else None
        if constraints is not None:
            builder = builder.add_extension(constraints, critical=True)
        for extension in self._pointer_extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self.signer.private_key, hash_for(self.signer.key_type))

    def issue_service(
        self,
        *,
        service: ServiceKind,
        public_key: CertificatePublicKeyTypes,
        at: datetime,
        lifetime: timedelta,
        common_name: str | None = None,
        hosts: Sequence[str] = (),
    ) -> x509.Certificate:
        """A certificate for one of the CA's own services: OCSP responder, TSA, node TLS.

        - OCSP: a delegated responder (RFC 6960 4.2.2.2): ``id-kp-OCSPSigning`` and
          ``id-pkix-ocsp-nocheck``, so relying parties do not ask about the responder itself;
          keep its lifetime short.
        - TSA (RFC 3161 2.3): the only extended key usage is a critical ``timeStamping``.
        - TLS: the node's HTTPS listener, ``serverAuth`` for ``hosts`` (DNS names or IPs).

        Both carry the CA's assurance levels as policies, so they validate under the same
        explicit-policy rules as the identities they speak about.
        """
        at = ensure_utc(at)
        self.check_usable(at)
        if lifetime <= timedelta(0):
            raise InputError(f"lifetime {lifetime} must be positive")
        not_after = min(at + lifetime, self.not_after)
        label = common_name or f"{_common_name(self.name)} {service.label}"
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, label[:64])]
            + [a for a in self.name if a.oid in (NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME)]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(random_serial())
            .not_valid_before(at)
            .not_valid_after(not_after)
            .add_extension(_END_ENTITY, critical=True)
            .add_extension(_SERVICE_KEY_USAGE[service], critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(_policies(self.limits.levels), critical=False)
        )
        if service is ServiceKind.OCSP:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            ).add_extension(x509.OCSPNoCheck(), critical=False)
        elif service is ServiceKind.TLS:
            if not hosts:
                raise InputError("a TLS server certificate needs at least one host name or IP")
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            ).add_extension(x509.SubjectAlternativeName(_host_names(hosts)), critical=False)
            for extension in self._pointer_extensions:
                builder = builder.add_extension(extension, critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            for extension in self._pointer_extensions:
                builder = builder.add_extension(extension, critical=False)
        return builder.sign(self.signer.private_key, hash_for(self.signer.key_type))


class ServiceKind(enum.StrEnum):
    """The services a CA runs with keys of their own."""

    OCSP = "ocsp"
    TSA = "tsa"
    TLS = "tls"

    @property
    def label(self) -> str:
        return {
            ServiceKind.OCSP: "OCSP Responder",
            ServiceKind.TSA: "Time-Stamping Authority",
            ServiceKind.TLS: "Node TLS",
        }[self]


def _host_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


_SERVICE_KEY_USAGE = {
    service: key_usage(
        "digital_signature", *(("content_commitment",) if service == ServiceKind.TSA else ())
    )
    for service in ServiceKind
}


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()
