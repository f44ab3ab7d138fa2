"""The six ways to link the countries' PKIs, built for real and published as a node would.

A :class:`Deployment` grows one country at a time (:meth:`Deployment.add`), so the cost of
adding a country is measured by adding it. It keeps every CA certificate, cross-certificate and
signed list it made, and publishes them (:meth:`Deployment.store`) at the URLs the certificates
name: each CA's CRL, its AIA ``issuers.p7c`` (its chain and every cross-certificate issued to
it) and SIA ``issued.p7c`` (the CA certificates it issued), the trust lists and the LOTL.

=====================  =============================================  ===========================
topology               links                                          cross-certificates; lists
=====================  =============================================  ===========================
``global-root``        one root; national CAs are its subordinates    0
``mesh``               every pair of roots cross-certifies            n(n-1)
``hub``                one bridge CA, both ways with every root       2n
``bridge-of-bridges``  regional bridges (``region_size`` = s roots    2n + 2⌈n/s⌉
                       each) and a top bridge, both ways
``group``              a trust list per country, one LOTL             0; n lists + 1 LOTL
``hybrid``             hub for identities, lists for services         2n; n lists + 1 LOTL
=====================  =============================================  ===========================

Agreements (policy mappings or memberships negotiated between two parties): global-root n
(each country with the global root), mesh n(n-1)/2, hub n, bridge-of-bridges n + ⌈n/s⌉, group n
(each country with the group), hybrid n (one membership covers bridge and list).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from trustbridge.errors import InputError
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.cross import CrossCertificateSpec, PolicyMapping, cross_certify
from trustbridge.pki.profiles import SubjectKind
from trustbridge.sim._keys import SeededSigner
from trustbridge.sim.world import (
    RESOLVE_AT,
    SIM_EPOCH,
    Country,
    Organization,
    Published,
    World,
    ca_name,
)
from trustbridge.trust.lists import (
    LevelEquivalence,
    Lotl,
    MemoryListState,
    Operator,
    Pointer,
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
    read_lotl,
    read_trust_list,
    sign_lotl,
    sign_trust_list,
)
from trustbridge.trust.reference import ITG
from trustbridge.trust.resolver import TrustConfig
from trustbridge.trust.schemes import AssuranceLevel

__all__ = [
    "CROSS_CERTIFICATE_LIFETIME",
    "LOTL_URL",
    "Deployment",
    "Link",
    "RelyingParty",
    "Topology",
    "closed_form",
    "deploy",
]

#: How long a cross-certificate is valid.
CROSS_CERTIFICATE_LIFETIME = timedelta(days=3 * 365)
#: Where the group publishes its LOTL.
LOTL_URL = "http://lotl.example/trust/lotl.jws"
#: The scope of every country's conformity assessment body in the trust lists.
_BODY_SCOPE = ("iec-62443-4-1", "iso-iec-27001")


class Topology(enum.StrEnum):
    """How the countries' trust schemes are linked."""

    GLOBAL_ROOT = "global-root"
    MESH = "mesh"
    HUB = "hub"
    BRIDGE_OF_BRIDGES = "bridge-of-bridges"
    GROUP = "group"
    HYBRID = "hybrid"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def bridged(self) -> bool:
        """Identities are resolved through cross-certificates."""
        return self in (Topology.MESH, Topology.HUB, Topology.BRIDGE_OF_BRIDGES, Topology.HYBRID)

    @property
    def listed(self) -> bool:
        """The topology publishes trust lists and a LOTL."""
        return self in (Topology.GROUP, Topology.HYBRID)


_DESCRIPTIONS = {
    Topology.GLOBAL_ROOT: "one global root; every national CA is its subordinate (a single "
    "overarching process, one policy)",
    Topology.MESH: "bilateral cross-certification between every pair of national roots",
    Topology.HUB: "one bridge CA cross-certified both ways with every national root",
    Topology.BRIDGE_OF_BRIDGES: "regional bridge CAs linked by a top bridge",
    Topology.GROUP: "a signed trust list per country and one list of trusted lists (LOTL)",
    Topology.HYBRID: "a bridge CA for identities, trust lists and a LOTL for service recognition",
}


@dataclass(frozen=True)
class ClosedForm:
    """What a topology of ``n`` countries needs, by formula."""

    cross_certificates: int
    agreements: int
    trust_lists: int
    lotls: int
    bridges: int


def closed_form(topology: Topology, n: int, *, region_size: int) -> ClosedForm:
    """The counts :class:`Deployment` must reach for ``n`` countries (see the module table)."""
    regions = math.ceil(n / region_size)
    return {
        Topology.GLOBAL_ROOT: ClosedForm(0, n, 0, 0, 0),
        Topology.MESH: ClosedForm(n * (n - 1), n * (n - 1) // 2, 0, 0, 0),
        Topology.HUB: ClosedForm(2 * n, n, 0, 0, 1),
        Topology.BRIDGE_OF_BRIDGES: ClosedForm(2 * n + 2 * regions, n + regions, 0, 0, regions + 1),
        Topology.GROUP: ClosedForm(0, n, n, 1, 0),
        Topology.HYBRID: ClosedForm(2 * n, n, n, 1, 1),
    }[topology]


@dataclass(frozen=True)
class Link:
    """A cross-certificate: CA ``issuer`` certified CA ``subject`` (labels)."""

    issuer: str
    subject: str
    certificate: x509.Certificate


@dataclass(frozen=True)
class RelyingParty:
    """A company of one country as a relying party: what it trusts and what it holds."""

    country: Country
    config: TrustConfig
    #: DER anchors, the pinned LOTL signer, the LOTL and the lists it keeps.
    hold_bytes: int


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _p7c(certificates: Sequence[x509.Certificate]) -> bytes:
    return pkcs7.serialize_certificates(list(certificates), Encoding.DER)


def _mapping(
    issuer: Sequence[AssuranceLevel], subject: Sequence[AssuranceLevel]
) -> CrossCertificateSpec:
    return CrossCertificateSpec(
        mappings=tuple(PolicyMapping(a.oid, b.oid) for a, b in zip(issuer, subject, strict=True))
    )


@dataclass
class Deployment:
    """The countries linked in one topology, grown one country at a time."""

    topology: Topology
    world: World
    #: Bridge-of-bridges: how many national roots share a regional bridge.
    region_size: int = 10
    #: next_update - issued_at of the trust lists and the LOTL.
    list_validity: timedelta = timedelta(hours=24)
    countries: list[Country] = field(default_factory=list)
    #: Every CA of the deployment by label, in the order they were made.
    cas: dict[str, Published] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    #: Pairs of parties (labels) that negotiated a mapping or a membership.
    agreements: list[tuple[str, str]] = field(default_factory=list)
    #: The country's trust list (object and signed JWS) by scheme code.
    lists: dict[str, tuple[TrustList, bytes]] = field(default_factory=dict)
    lotl: tuple[Lotl, bytes] | None = None
    _children: dict[str, list[x509.Certificate]] = field(default_factory=dict, repr=False)
    _parents: dict[str, str] = field(default_factory=dict, repr=False)
    _by_code: dict[str, Country] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.region_size < 1:
            raise InputError(f"the region size must be at least 1, not {self.region_size}")

    # -- what a topology is made of -----------------------------------------------------------

    @property
    def n(self) -> int:
        return len(self.countries)

    def _publish(self, published: Published, *, parent: str | None = None) -> None:
        self.cas[published.label] = published
        self._children.setdefault(published.label, [])
        if parent is not None:
            self._children.setdefault(parent, []).append(published.ca.certificate)
            self._parents[published.label] = parent

    def _cross(
        self, issuer: Published, subject: Published, spec: CrossCertificateSpec
    ) -> x509.Certificate:
        certificate = cross_certify(
            issuer.ca,
            subject.ca.certificate,
            CrossCertificateSpec(
                mappings=spec.mappings,
                shared_policies=spec.shared_policies,
                subject_repository_url=subject.ca.endpoints.repository_url,
            ),
            at=SIM_EPOCH,
            lifetime=CROSS_CERTIFICATE_LIFETIME,
            serial=self.world.serial(f"{self.topology}/{issuer.label}->{subject.label}"),
        )
        self.links.append(Link(issuer.label, subject.label, certificate))
        return certificate

    def _both_ways(
        self, root: Published, bridge: Published, levels: Sequence[AssuranceLevel]
    ) -> None:
        """A national root and a bridge (reference levels) cross-certify each other."""
        self._cross(root, bridge, _mapping(levels, ITG.levels))
        self._cross(bridge, root, _mapping(ITG.levels, levels))
        self.agreements.append((root.label, bridge.label))

    def _bridge(self, label: str, common_name: str, host: str) -> Published:
        """A bridge CA: a root in the reference levels with no path length limit."""
        return self.world.root(
            label=label,
            name=ca_name("CH", "Industrial Trust Group", common_name),
            levels=ITG.levels,
            host=host,
            slug="bridge",
            path_length=None,
        )

    @cached_property
    def hub(self) -> Published:
        return self._bridge("bridge", "Industrial Bridge CA", "bridge.example")

    @cached_property
    def top(self) -> Published:
        return self._bridge("top-bridge", "Top Bridge CA", "top-bridge.example")

    def region_of(self, index: int) -> int:
        """The region (0-based) of country ``index`` in bridge-of-bridges."""
        return index // self.region_size

    def _region(self, region: int) -> Published:
        label = f"region/{region + 1}"
        existing = self.cas.get(label)
        if existing is not None:
            return existing
        bridge = self._bridge(
            label, f"Region {region + 1} Bridge CA", f"bridge-r{region + 1}.example"
        )
        self._publish(bridge)
        if "top-bridge" not in self.cas:
            self._publish(self.top)
        shared = CrossCertificateSpec(
            mappings=(), shared_policies=tuple(lv.oid for lv in ITG.levels)
        )
        self._cross(bridge, self.top, shared)
        self._cross(self.top, bridge, shared)
        self.agreements.append((bridge.label, self.top.label))
        return bridge

    @cached_property
    def lotl_signer(self) -> tuple[x509.Certificate, SeededSigner]:
        signer = self.world.signer("lotl-signer")
        certificate = self_signed_certificate(
            signer,
            ca_name("CH", "Industrial Trust Group", "Industrial Trust Group LOTL Signer"),
            not_before=SIM_EPOCH - timedelta(minutes=5),
            not_after=SIM_EPOCH + timedelta(days=3 * 365),
            serial=self.world.serial("lotl-signer"),
        )
        return certificate, signer

    # -- growing ------------------------------------------------------------------------------

    def add(self, country: Country) -> None:
        """Link one more country (the next in joining order) into the topology."""
        if country.index != self.n:
            raise InputError(
                f"countries join in order: expected country {self.n + 1}, got {country.index + 1}"
            )
        self.countries.append(country)
        self._by_code[country.code] = country
        if self.topology is Topology.GLOBAL_ROOT:
            if self.n == 1:
                self._publish(self.world.global_root)
            self._publish(country.global_ca, parent=self.world.global_root.label)
            for tsp in country.tsps:
                self._publish(tsp.global_, parent=country.global_ca.label)
            self.agreements.append((country.global_ca.label, self.world.global_root.label))
            return
        self._publish(country.root)
        for tsp in country.tsps:
            self._publish(tsp.national, parent=country.root.label)
        levels = country.scheme.levels
        if self.topology is Topology.MESH:
            for other in self.countries[:-1]:
                self._cross(other.root, country.root, _mapping(other.scheme.levels, levels))
                self._cross(country.root, other.root, _mapping(levels, other.scheme.levels))
                self.agreements.append((other.root.label, country.root.label))
        elif self.topology in (Topology.HUB, Topology.HYBRID):
            if self.n == 1:
                self._publish(self.hub)
            self._both_ways(country.root, self.hub, levels)
        elif self.topology is Topology.BRIDGE_OF_BRIDGES:
            self._both_ways(country.root, self._region(self.region_of(country.index)), levels)
        if self.topology.listed:
            self._list(country)
            if self.topology is Topology.GROUP:  # hybrid: the bridge agreement covers the list
                self.agreements.append((country.root.label, "group"))

    def _list(self, country: Country) -> None:
        """The country's trust list, and the LOTL again with one more pointer."""
        since = SIM_EPOCH - timedelta(days=1)
        granted = (StatusChange(ServiceStatus.GRANTED, since),)
        providers: list[Provider] = []
        if self.topology is Topology.GROUP:
            providers += [
                Provider(
                    name=tsp.name,
                    country=country.iso,
                    organization_identifier=f"VAT{country.iso}-{t + 1:09d}",
                    services=(
                        Service(
                            name=f"{tsp.name} Organization CA",
                            kind=ServiceKind.CA,
                            certificates=(tsp.national.ca.certificate,),
                            status_history=granted,
                            subject_kinds=(SubjectKind.ORGANIZATION,),
                            levels=country.scheme.levels,
                        ),
                    ),
                )
                for t, tsp in enumerate(country.tsps)
            ]
        body = country.body
        providers.append(
            Provider(
                name=body.subject.name,
                country=country.iso,
                organization_identifier=body.subject.identifier,
                services=(
                    Service(
                        name=f"{body.subject.name} (cab)",
                        kind=ServiceKind.CAB,
                        certificates=(body.certificate,),
                        status_history=granted,
                        scope=_BODY_SCOPE,
                    ),
                ),
            )
        )
        trust_list = TrustList(
            id=country.code,
            scheme=country.scheme,
            operator=Operator(f"{country.iso} Trust List Operator", country.iso),
            sequence=1,
            issued_at=SIM_EPOCH,
            next_update=SIM_EPOCH + self.list_validity,
            providers=tuple(providers),
        )
        signed = sign_trust_list(
            trust_list, country.list_signer, chain=[country.list_signer_certificate]
        )
        self.lists[country.code] = (trust_list, signed)
        certificate, signer = self.lotl_signer
        lotl = Lotl(
            group=ITG,
            operator=Operator("Industrial Trust Group", "CH"),
            sequence=self.n,
            issued_at=SIM_EPOCH,
            next_update=SIM_EPOCH + self.list_validity,
            pointers=tuple(
                Pointer(c.code, c.iso, list_url(c), (c.list_signer_certificate,))
                for c in self.countries
            ),
            equivalences=tuple(
                e for c in self.countries for e in LevelEquivalence.by_rank(c.scheme, ITG)
            ),
        )
        self.lotl = (lotl, sign_lotl(lotl, signer, chain=[certificate]))

    # -- publishing ---------------------------------------------------------------------------

    def store(self) -> dict[str, bytes]:
        """Every published artifact by URL: CRLs, ``.p7c`` bundles, trust lists, the LOTL."""
        issued_to: dict[str, list[x509.Certificate]] = {}
        issued_by: dict[str, list[x509.Certificate]] = {}
        for link in self.links:
            issued_to.setdefault(link.subject, []).append(link.certificate)
            issued_by.setdefault(link.issuer, []).append(link.certificate)
        store: dict[str, bytes] = {}
        for label, published in self.cas.items():
            endpoints = published.ca.endpoints
            chain = [published.ca.certificate, *published.ca.chain]
            store[endpoints.crl_url] = published.crl
            store[endpoints.ca_issuers_url] = _p7c(chain + issued_to.get(label, []))
            issued = self._children.get(label, []) + issued_by.get(label, [])
            if endpoints.repository_url is not None and issued:
                store[endpoints.repository_url] = _p7c(issued)
        for country in self.countries:
            if country.code in self.lists:
                store[list_url(country)] = self.lists[country.code][1]
        if self.lotl is not None:
            store[LOTL_URL] = self.lotl[1]
        return store

    # -- relying parties ----------------------------------------------------------------------

    def identity(self, organization: Organization) -> x509.Certificate:
        """The organization's certificate as this topology issued it."""
        if self.topology is Topology.GLOBAL_ROOT:
            return organization.global_certificate
        return organization.certificate

    def identities(self) -> list[tuple[Country, Organization]]:
        return [(c, o) for c in self.countries for o in c.organizations]

    def read_lists(self) -> tuple[Lotl, tuple[TrustList, ...]]:
        """The LOTL and every list, read as a relying party reads them: signatures, signers,
        schema, rollback and freshness checked (:func:`trustbridge.trust.lists.read_lotl`)."""
        if self.lotl is None:
            raise InputError(f"topology {self.topology} publishes no trust lists")
        certificate, _ = self.lotl_signer
        state = MemoryListState()
        lotl = read_lotl(
            self.lotl[1], trusted_signers=[certificate], at=RESOLVE_AT, state=state, source=LOTL_URL
        )
        by_location = {list_url(c): self.lists[c.code][1] for c in self.countries}
        lists = tuple(
            read_trust_list(
                by_location[p.location], lotl=lotl, at=RESOLVE_AT, state=state, source=p.location
            )
            for p in lotl.pointers
        )
        return lotl, lists

    def relying_party(
        self, country: Country, lists: tuple[Lotl, tuple[TrustList, ...]] | None = None
    ) -> RelyingParty:
        """A relying party of ``country``: its own root as anchor (the global root in
        global-root), and, where the topology has them, the LOTL and lists (``lists``: as
        :meth:`read_lists` returned them, to read them once for many relying parties)."""
        if self.topology is Topology.GLOBAL_ROOT:
            anchor = self.world.global_root.ca.certificate
            return RelyingParty(
                country,
                TrustConfig(scheme=ITG, anchors=(anchor,), reference=ITG),
                len(_der(anchor)),
            )
        anchor = country.root.ca.certificate
        hold = len(_der(anchor))
        if not self.topology.listed:
            return RelyingParty(
                country, TrustConfig(scheme=country.scheme, anchors=(anchor,), reference=ITG), hold
            )
        lotl, trust_lists = lists if lists is not None else self.read_lists()
        assert self.lotl is not None
        hold += len(_der(self.lotl_signer[0])) + len(self.lotl[1])
        hold += sum(len(signed) for _, signed in self.lists.values())
        config = TrustConfig(
            scheme=country.scheme,
            anchors=(anchor,),
            lotl=lotl,
            trust_lists=trust_lists,
            reference=ITG,
        )
        return RelyingParty(country, config, hold)

    # -- structure ----------------------------------------------------------------------------

    def pinned(self, country: Country) -> tuple[str, ...]:
        """Labels of the keys a relying party of ``country`` pins: its trust anchor, and the
        LOTL signer where it reads lists."""
        if self.topology is Topology.GLOBAL_ROOT:
            return (self.world.global_root.label,)
        pinned = (country.root.label,)
        return (*pinned, "lotl-signer") if self.topology.listed else pinned

    def identity_anchors(self, country: Country) -> tuple[str, ...]:
        """The pinned keys identities are resolved from (hybrid resolves identities through
        the bridge only, so its LOTL signer is not among them)."""
        pinned = self.pinned(country)
        return pinned if self.topology is not Topology.HYBRID else pinned[:1]

    def parent_of(self, label: str) -> str | None:
        """The CA that issued CA ``label``'s certificate (None for a self-signed one)."""
        return self._parents.get(label)

    def children_of(self, label: str) -> list[x509.Certificate]:
        """The CA certificates CA ``label`` issued to subordinates."""
        return list(self._children.get(label, []))

    def path_labels(self, relying: Country, organization: Organization) -> tuple[str, ...]:
        """The CAs (labels, anchor first, issuing CA last) the identity's path passes from a
        relying party of ``relying``, as the topology lays it out; the tests check it against
        the resolver's paths."""
        holder = self._by_code[organization.country]
        tsp = holder.tsps[organization.tsp]
        if self.topology is Topology.GLOBAL_ROOT:
            return (self.world.global_root.label, holder.global_ca.label, tsp.global_.label)
        own = relying.code == holder.code
        issuing = tsp.national.label
        if self.topology is Topology.GROUP:
            return (holder.root.label, issuing)
        if own:
            return (relying.root.label, issuing)
        if self.topology is Topology.MESH:
            middle: tuple[str, ...] = ()
        elif self.topology in (Topology.HUB, Topology.HYBRID):
            middle = (self.hub.label,)
        else:
            mine = f"region/{self.region_of(relying.index) + 1}"
            theirs = f"region/{self.region_of(holder.index) + 1}"
            middle = (mine,) if mine == theirs else (mine, self.top.label, theirs)
        return (relying.root.label, *middle, holder.root.label, issuing)

    def list_labels(self, organization: Organization) -> tuple[str, ...]:
        """The signed lists an identity's recognition depends on (group: its country's list and
        the LOTL)."""
        if self.topology is not Topology.GROUP:
            return ()
        return (f"list-signer/{organization.country}", "lotl-signer")


def list_url(country: Country) -> str:
    """Where a country's trust list is published."""
    return f"http://list.{country.code}.example/trust/{country.code}.jws"


def deploy(
    topology: Topology,
    world: World,
    countries: Iterable[Country],
    *,
    region_size: int = 10,
    list_validity: timedelta = timedelta(hours=24),
) -> Deployment:
    """A deployment of ``topology`` over ``countries`` (in joining order)."""
    deployment = Deployment(topology, world, region_size=region_size, list_validity=list_validity)
    for country in countries:
        deployment.add(country)
    return deployment
