"""The simulated world: countries with real national PKIs, made with trustbridge's own CA code.

Country ``i`` (in a fixed order that starts with Germany and Japan, the reference scenario) has
a trust scheme with three levels, a root CA, ``tsps`` trust service providers, each running an
issuing CA for organizations under the root, ``orgs`` organization identities spread over the
TSPs at levels the seed chooses, and a conformity assessment body (an organization identity that
trust lists recognize as a service). Every country also exists a second time under one global
root (the "single overarching process"): the same names and keys, certified by the global root in
the group's reference levels, the identities re-issued at the reference level of their rank.

Everything is derived from the seed: keys (:mod:`trustbridge.sim._keys`), serial numbers,
levels; and everything is issued at :data:`SIM_EPOCH`, so one seed gives byte-identical
artifacts.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustbridge.errors import InputError
from trustbridge.pki.ca import (
    CaLimits,
    CertificateAuthority,
    Endpoints,
    build_root_certificate,
    self_signed_certificate,
)
from trustbridge.pki.profiles import OrganizationSubject, SubjectKind
from trustbridge.pki.revocation import CrlSpec, build_crl
from trustbridge.sim._keys import SeededSigner, derive_key, derive_serial
from trustbridge.trust.reference import GERMANY, ITG, JAPAN
from trustbridge.trust.schemes import AssuranceLevel, TrustScheme

__all__ = [
    "COUNTRY_CODES",
    "RESOLVE_AT",
    "SIM_EPOCH",
    "Country",
    "Organization",
    "Published",
    "Tsp",
    "World",
    "WorldSpec",
    "ca_name",
]

#: When everything in a simulated world is issued (the simulation's fixed clock).
SIM_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
#: When relying parties resolve identities: an hour later.
RESOLVE_AT = SIM_EPOCH + timedelta(hours=1)

#: ISO 3166-1 alpha-2 codes in the order countries join: the reference scenario's two first.
COUNTRY_CODES = [
    "DE",
    "JP",
    "FR",
    "US",
    "CN",
    "KR",
    "IT",
    "GB",
    "IN",
    "BR",
    "CA",
    "ES",
    "NL",
    "CH",
    "SE",
    "PL",
    "BE",
    "AT",
    "NO",
    "DK",
    "FI",
    "IE",
    "PT",
    "CZ",
    "HU",
    "RO",
    "GR",
    "SK",
    "SI",
    "HR",
    "BG",
    "LT",
    "LV",
    "EE",
    "LU",
    "MT",
    "CY",
    "IS",
    "TR",
    "IL",
    "AE",
    "SA",
    "QA",
    "EG",
    "ZA",
    "NG",
    "KE",
    "MA",
    "TN",
    "GH",
    "ET",
    "MX",
    "AR",
    "CL",
    "CO",
    "PE",
    "UY",
    "EC",
    "VE",
    "BO",
    "PY",
    "CR",
    "PA",
    "DO",
    "GT",
    "HN",
    "SV",
    "NI",
    "CU",
    "JM",
    "TT",
    "AU",
    "NZ",
    "SG",
    "MY",
    "TH",
    "VN",
    "ID",
    "PH",
    "TW",
    "HK",
    "PK",
    "BD",
    "LK",
    "NP",
    "KZ",
    "UZ",
    "AZ",
    "GE",
    "AM",
    "UA",
    "MD",
    "BY",
    "RS",
    "BA",
    "ME",
    "MK",
    "AL",
    "XK",
    "IR",
    "IQ",
    "JO",
    "LB",
    "KW",
    "BH",
    "OM",
    "YE",
    "DZ",
    "LY",
    "SD",
    "SN",
    "CI",
    "CM",
    "AO",
    "TZ",
    "UG",
    "RW",
    "ZM",
    "ZW",
    "MZ",
    "BW",
    "NA",
    "MG",
    "MU",
    "KH",
    "LA",
    "MM",
    "MN",
    "BN",
    "FJ",
    "PG",
]

_CA_LIFETIME = timedelta(days=20 * 365)
_TSP_LIFETIME = timedelta(days=10 * 365)
_LEVELS = 3


def ca_name(iso: str, organization: str, common_name: str) -> x509.Name:
    """The distinguished name of a simulated CA."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, iso),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _level_oid(code: str, rank: int) -> x509.ObjectIdentifier:
    """An OID under the UUID arc (2.25, 128 bits) derived from the scheme and the rank."""
    digest = hashlib.sha256(f"trustbridge-sim/level/{code}/{rank}".encode()).digest()
    return x509.ObjectIdentifier(f"2.25.{int.from_bytes(digest[:16])}")


def _scheme(code: str) -> TrustScheme:
    """The country's trust scheme: Germany's and Japan's of the reference scenario, or three
    levels with OIDs under the UUID arc derived from the code (the same in every run)."""
    fixed = {"de": GERMANY, "jp": JAPAN}
    if code in fixed:
        return fixed[code]
    levels = tuple(
        AssuranceLevel(f"{code}-level{rank}", _level_oid(code, rank), rank)
        for rank in range(1, _LEVELS + 1)
    )
    return TrustScheme(code, f"{code.upper()} industrial trust scheme", levels)


@dataclass(frozen=True)
class WorldSpec:
    """What a world is made of; all of it, and the seed, fixes every byte of it."""

    seed: int
    tsps_per_country: int = 2
    orgs_per_country: int = 5
    #: nextUpdate - thisUpdate of every CRL.
    crl_validity: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.tsps_per_country < 1:
            raise InputError(f"tsps per country must be at least 1, not {self.tsps_per_country}")
        if self.orgs_per_country < 1:
            raise InputError(f"orgs per country must be at least 1, not {self.orgs_per_country}")
        if self.crl_validity <= timedelta(0):
            raise InputError("the CRL validity must be positive")


@dataclass(frozen=True)
class Published:
    """A CA as it publishes: the CA (certificate, signer, limits, URLs) and its CRL (DER)."""

    label: str
    ca: CertificateAuthority
    crl: bytes
    host: str
    slug: str


@dataclass(frozen=True)
class Tsp:
    """A trust service provider: its issuing CA, in the national and in the global hierarchy."""

    label: str
    name: str
    national: Published
    global_: Published


@dataclass(frozen=True)
class Organization:
    """An organization identity, issued by one TSP, in both hierarchies."""

    label: str
    country: str
    tsp: int
    #: Rank of its level, 1..3 (the national level of that rank, or itg-loa<rank>).
    rank: int
    subject: OrganizationSubject
    certificate: x509.Certificate
    global_certificate: x509.Certificate


@dataclass(frozen=True)
class Country:
    """One country: its scheme, national PKI, its place under the global root, its list signer."""

    index: int
    iso: str
    scheme: TrustScheme
    root: Published
    tsps: tuple[Tsp, ...]
    organizations: tuple[Organization, ...]
    #: The national root's key and name, certified by the global root (global-root topology).
    global_ca: Published
    #: The conformity assessment body: an organization identity that lists recognize.
    body: Organization
    list_signer: SeededSigner
    list_signer_certificate: x509.Certificate

    @property
    def code(self) -> str:
        return self.scheme.code


@dataclass
class World:
    """The countries of one seed, made on demand in joining order (country ``i`` never changes
    when more countries join)."""

    spec: WorldSpec
    _countries: list[Country] = field(default_factory=list, repr=False)

    @property
    def seed(self) -> int:
        return self.spec.seed

    def signer(self, label: str) -> SeededSigner:
        return SeededSigner(self.seed, label)

    def serial(self, label: str) -> int:
        return derive_serial(self.seed, label)

    def crl(self, ca: CertificateAuthority, label: str) -> bytes:
        """The CA's CRL: no revocations, number 1, valid :attr:`WorldSpec.crl_validity`."""
        return build_crl(
            issuer=ca.certificate,
            signer=ca.signer,
            entries=(),
            spec=CrlSpec(
                number=1, this_update=SIM_EPOCH, next_update=SIM_EPOCH + self.spec.crl_validity
            ),
        )

    def root(
        self,
        *,
        label: str,
        name: x509.Name,
        levels: tuple[AssuranceLevel, ...],
        host: str,
        slug: str,
        path_length: int | None,
    ) -> Published:
        """A self-signed root (a national root, a bridge, the global root) published at ``host``."""
        signer = self.signer(label)
        endpoints = Endpoints.for_ca(f"http://{host}", slug)
        limits = CaLimits(levels=tuple(lv.oid for lv in levels), path_length=path_length)
        certificate = build_root_certificate(
            signer=signer,
            name=name,
            limits=limits,
            at=SIM_EPOCH,
            lifetime=_CA_LIFETIME,
            serial=self.serial(label),
            repository_url=endpoints.repository_url,
        )
        ca = CertificateAuthority(certificate, signer, limits, endpoints)
        return Published(label, ca, self.crl(ca, label), host, slug)

    @cached_property
    def global_root(self) -> Published:
        """The one root of the global-root topology, in the reference levels."""
        return self.root(
            label="global-root",
            name=ca_name("CH", "Global Industrial Trust", "Global Industrial Root CA"),
            levels=ITG.levels,
            host="global-root.example",
            slug="root",
            path_length=None,
        )

    def country(self, index: int) -> Country:
        """Country ``index`` (0-based), made with all countries before it."""
        if not 0 <= index < len(COUNTRY_CODES):
            raise InputError(
                f"the simulation knows {len(COUNTRY_CODES)} countries; {index + 1} asked for"
            )
        while len(self._countries) <= index:
            self._countries.append(self._make(len(self._countries)))
        return self._countries[index]

    def countries(self, count: int) -> list[Country]:
        return [self.country(i) for i in range(count)]

    # -- making a country ---------------------------------------------------------------------

    def _subordinate(
        self,
        parent: Published,
        *,
        label: str,
        name: x509.Name,
        levels: tuple[AssuranceLevel, ...],
        host: str,
        slug: str,
        path_length: int,
        kinds: frozenset[SubjectKind],
        signer_label: str,
    ) -> Published:
        signer = self.signer(signer_label)
        limits = CaLimits(
            levels=tuple(lv.oid for lv in levels), kinds=kinds, path_length=path_length
        )
        certificate = parent.ca.certify_ca(
            subject_name=name,
            public_key=signer.public_key,
            limits=limits,
            at=SIM_EPOCH,
            lifetime=_TSP_LIFETIME if path_length == 0 else _CA_LIFETIME - timedelta(days=1),
            serial=self.serial(label),
        )
        endpoints = Endpoints.for_ca(f"http://{host}", slug)
        ca = CertificateAuthority(
            certificate,
            signer,
            limits,
            endpoints,
            chain=(parent.ca.certificate, *parent.ca.chain),
        )
        return Published(label, ca, self.crl(ca, label), host, slug)

    def _make(self, index: int) -> Country:
        iso = COUNTRY_CODES[index]
        code = iso.lower()
        scheme = _scheme(code)
        rng = random.Random(f"{self.seed}/{code}")  # noqa: S311 - levels, not secrets
        root_host = f"root.{code}.example"
        root_name = ca_name(iso, f"{iso} Industrial Trust Scheme", f"{iso} Industrial Root CA")
        root = self.root(
            label=f"root/{code}",
            name=root_name,
            levels=scheme.levels,
            host=root_host,
            slug="root",
            path_length=1,
        )
        organizations_kind = frozenset({SubjectKind.ORGANIZATION})
        global_ca = self._subordinate(
            self.global_root,
            label=f"global/root/{code}",
            name=root_name,
            levels=ITG.levels,
            host=root_host,
            slug="root",
            path_length=1,
            kinds=frozenset(),
            signer_label=f"root/{code}",
        )
        tsps: list[Tsp] = []
        for t in range(self.spec.tsps_per_country):
            tsp_name = f"{iso} Trust Services {t + 1}"
            ca_label = f"tsp/{code}/{t + 1}"
            name = ca_name(iso, tsp_name, f"{tsp_name} Organization CA")
            national, in_global = (
                self._subordinate(
                    parent,
                    label=label,
                    name=name,
                    levels=levels,
                    host=f"tsp{t + 1}.{code}.example",
                    slug="ca",
                    path_length=0,
                    kinds=organizations_kind,
                    signer_label=ca_label,
                )
                for parent, label, levels in (
                    (root, ca_label, scheme.levels),
                    (global_ca, f"global/{ca_label}", ITG.levels),
                )
            )
            tsps.append(Tsp(ca_label, tsp_name, national, in_global))
        organizations = tuple(
            self._organization(iso, scheme, tsps, k, rank=rng.randint(1, _LEVELS))
            for k in range(self.spec.orgs_per_country)
        )
        body = self._organization(iso, scheme, tsps, -1, rank=_LEVELS)
        signer = self.signer(f"list-signer/{code}")
        list_signer_certificate = self_signed_certificate(
            signer,
            ca_name(iso, f"{iso} Trust List Operator", f"{iso} Trust List Signer"),
            not_before=SIM_EPOCH - timedelta(minutes=5),
            not_after=SIM_EPOCH + timedelta(days=3 * 365),
            serial=self.serial(f"list-signer/{code}"),
        )
        return Country(
            index=index,
            iso=iso,
            scheme=scheme,
            root=root,
            tsps=tuple(tsps),
            organizations=organizations,
            global_ca=global_ca,
            body=body,
            list_signer=signer,
            list_signer_certificate=list_signer_certificate,
        )

    def _organization(
        self, iso: str, scheme: TrustScheme, tsps: list[Tsp], k: int, *, rank: int
    ) -> Organization:
        code = iso.lower()
        if k < 0:
            label, tsp, name = f"body/{code}", 0, f"{iso} Conformity Assessment Body"
        else:
            label = f"org/{code}/{k + 1}"
            tsp, name = k % len(tsps), f"{iso} Manufacturer {k + 1:03d}"
        subject = OrganizationSubject(
            name=name,
            country=iso,
            identifier=f"VAT{iso}-{derive_serial(self.seed, label) % 10**9:09d}",
        )
        public_key = derive_key(self.seed, label).public_key()
        certificate = tsps[tsp].national.ca.issue(
            subject=subject,
            public_key=public_key,
            level=scheme.levels[rank - 1].oid,
            at=SIM_EPOCH,
            serial=self.serial(label),
        )
        global_certificate = tsps[tsp].global_.ca.issue(
            subject=subject,
            public_key=public_key,
            level=ITG.levels[rank - 1].oid,
            at=SIM_EPOCH,
            serial=self.serial(f"global/{label}"),
        )
        return Organization(label, code, tsp, rank, subject, certificate, global_certificate)
