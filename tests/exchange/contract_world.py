"""The contract tests' world: the linked DE/JP/bridge homes, with a signatory CA in each TSP.

Muster (DE) and Hayabusa (JP) each get an authorized signatory; Muster also a person without
the role, and Nordsee (DE, not a party) a signatory of its own. Signatories' certificates live
one year, so the archived contract can be validated after they expired and before the TSA's
certificate (two years) did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.homes import NOW, Holder, decide, issued, new_holder
from tests.trust.linked import SPEC, Linked, build_linked
from trustbridge.clock import FixedClock
from trustbridge.errors import NotFoundError
from trustbridge.exchange.contract import TimestampClient
from trustbridge.home import Home
from trustbridge.pki.profiles import PersonSubject, Role, SubjectKind

MUSTER_ID = "VATDE-123456789"
HAYABUSA_ID = "NTRJP-3180001012345"
NORDSEE_ID = "VATDE-555444333"
SIGNATORY_DAYS = 365
#: After every signatory's certificate expired, before the TSA certificates did.
AFTER_EXPIRY = NOW + timedelta(days=SIGNATORY_DAYS + 100)


@dataclass
class Person:
    holder: Holder
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        assert self.holder.certificate is not None
        return self.holder.certificate


@dataclass
class ContractWorld:
    linked: Linked
    customer: Person  # Muster's authorized signatory
    supplier: Person  # Hayabusa's authorized signatory
    clerk: Person  # a Muster employee without the role
    outsider: Person  # Nordsee's authorized signatory (not a party)
    #: CRLs of every DE and JP CA, issued at NOW (when the contract is signed).
    crls_now: list[bytes] = field(default_factory=list)
    #: The same, issued at AFTER_EXPIRY.
    crls_later: list[bytes] = field(default_factory=list)

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return (self.linked.root(self.linked.de), self.linked.root(self.linked.jp))

    def tsa(self, home: Home) -> TimestampClient:
        return home.status.tsa("signatories").respond

    def tsa_chain(self, home: Home) -> tuple[x509.Certificate, ...]:
        authority = home.status.tsa("signatories")
        return (authority.certificate, *home.chain_of("signatories"))

    def crls(self, *homes: Home) -> list[bytes]:
        """The latest full and delta CRLs of every CA of ``homes`` (default: DE and JP)."""
        found: list[bytes] = []
        for home in homes or (self.linked.de, self.linked.jp):
            for info in home.cas():
                found.append(home.status.latest_crl(info.slug).der)
                with contextlib.suppress(NotFoundError):  # no delta CRL before a second full one
                    found.append(home.status.latest_crl(info.slug, delta=True).der)
        return found

    def certificates(self) -> list[x509.Certificate]:
        """Every signatory's and TSA's chain."""
        seen: dict[bytes, x509.Certificate] = {}
        chains: Sequence[Sequence[x509.Certificate]] = (
            self.customer.chain,
            self.supplier.chain,
            self.tsa_chain(self.linked.de),
            self.tsa_chain(self.linked.jp),
        )
        for chain in chains:
            for certificate in chain:
                seen.setdefault(certificate.public_bytes(Encoding.DER), certificate)
        return list(seen.values())


def _person(
    home: Home,
    officer: Holder,
    *,
    given_name: str,
    surname: str,
    organization: str,
    identifier: str,
    roles: frozenset[Role],
    level: str,
) -> Person:
    holder = new_holder()
    subject = PersonSubject(
        given_name=given_name,
        surname=surname,
        country=identifier[3:5],
        organization=organization,
        organization_identifier=identifier,
        roles=roles,
    )
    pending = home.submit_request(
        ca="signatories",
        subject=subject,
        level=level,
        csr_data=holder.csr(),
        lifetime_days=SIGNATORY_DAYS,
    )
    holder.certificate = issued(decide(home, pending.id, officer))  # type: ignore[union-attr]
    return Person(holder, (holder.certificate, *home.chain_of("signatories")[:-1]))


def build_contract_world(path: Path) -> ContractWorld:
    linked = build_linked(path)
    for home in (linked.de, linked.jp):
        home.create_issuing_ca(
            parent="root",
            name=f"{home.config.node_name} Signatory CA",
            slug="signatories",
            kinds=[SubjectKind.PERSON],
            roles=[Role.AUTHORIZED_SIGNATORY],
            key=SPEC,
        )
    signatory = frozenset({Role.AUTHORIZED_SIGNATORY})
    customer = _person(
        linked.de,
        linked.de_officer,
        given_name="Klaus",
        surname="Muster",
        organization="Muster Maschinenbau GmbH",
        identifier=MUSTER_ID,
        roles=signatory,
        level="de-high",
    )
    clerk = _person(
        linked.de,
        linked.de_officer,
        given_name="Petra",
        surname="Lang",
        organization="Muster Maschinenbau GmbH",
        identifier=MUSTER_ID,
        roles=frozenset(),
        level="de-high",
    )
    outsider = _person(
        linked.de,
        linked.de_officer,
        given_name="Jan",
        surname="Peters",
        organization="Nordsee Certification GmbH",
        identifier=NORDSEE_ID,
        roles=signatory,
        level="de-high",
    )
    supplier = _person(
        linked.jp,
        linked.jp_officer,
        given_name="Yuki",
        surname="Tanaka",
        organization="Hayabusa Sensor Components K.K.",
        identifier=HAYABUSA_ID,
        roles=signatory,
        level="jp-level3",
    )
    homes = (linked.de, linked.jp)
    for home in homes:
        for info in home.cas():
            home.status.issue_crls(info.slug)
        home.status.tsa("signatories")
    world = ContractWorld(linked, customer, supplier, clerk, outsider)
    world.crls_now = world.crls()
    # The CRLs a relying party fetches long after signing: they vouch for the TSA's chain at
    # that time (the archive itself proves everything older).
    for home in homes:
        home.clock = FixedClock(AFTER_EXPIRY)
        for info in home.cas():
            home.status.issue_crls(info.slug)
    world.crls_later = world.crls()
    for home in homes:
        home.clock = FixedClock(NOW)
    return world
