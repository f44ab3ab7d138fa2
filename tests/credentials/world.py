"""The credential tests' world: linked DE/JP PKIs, the companies and assessment bodies as issuer
homes, trust lists that accredit the bodies for their criteria, and a German relying party.

- Fuji Conformity Assessment (JP) is a conformity assessment body for ISO/IEC 27001,
  IEC 62443-4-1 and IEC 61508 (``cab``);
- Nordsee Certification (DE) is an auditor for IEC 62443-3-3 and ISO/IEC 27001 (``auditor``);
- Hayabusa (JP) issues self-declarations about itself; Muster (DE) is the relying party.

Status lists are served from the issuer homes by :class:`WorldFetcher`, which also answers the
PKI URLs (CRLs, ``.p7c``) as the nodes would, and can be told to fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.homes import NOW, PASSPHRASE, PASSPHRASE_ENV, Holder, decide, issued, new_holder
from tests.trust.linked import HomesFetcher, Linked, build_linked
from tests.trust.test_resolver import SINCE, lotl, national_list
from trustbridge.clock import FixedClock
from trustbridge.credentials.formats import Format
from trustbridge.credentials.requests import credential_from_request
from trustbridge.credentials.status import StatusListCache
from trustbridge.credentials.verify import (
    CredentialVerifier,
    VerificationParams,
    status_list_reader,
)
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.home.credentials import STATUS_PATH
from trustbridge.pki.profiles import OrganizationSubject
from trustbridge.trust.lists import (
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
)
from trustbridge.trust.paths import FetchError
from trustbridge.trust.reference import GERMANY, ITG, JAPAN
from trustbridge.trust.resolver import TrustConfig, TrustResolver
from trustbridge.trust.schemes import TrustScheme

HAYABUSA_ID = "NTRJP-3180001012345"
MUSTER_ID = "VATDE-123456789"
FUJI_SCOPE = ("iso-iec-27001", "iec-62443-4-1", "iec-61508")
NORDSEE_SCOPE = ("iec-62443-3-3", "iso-iec-27001")


@dataclass
class Organization:
    name: str
    identifier: str
    holder: Holder
    chain: tuple[x509.Certificate, ...]
    home: Home | None = None

    @property
    def certificate(self) -> x509.Certificate:
        assert self.holder.certificate is not None
        return self.holder.certificate


@dataclass
class WorldFetcher:
    """The PKI URLs from the TSP homes, status lists from the issuer homes."""

    pki: HomesFetcher
    issuers: list[Home]
    down: set[str] = field(default_factory=set)
    count: int = 0

    def fetch(self, url: str) -> bytes:
        self.count += 1
        if any(url.startswith(prefix) for prefix in self.down):
            raise FetchError(f"{url}: connection refused")
        for home in self.issuers:
            prefix = f"{home.config.base_url}{STATUS_PATH}/"
            if url.startswith(prefix):
                return home.credentials.signed_status_list(url[len(prefix) :])
        return self.pki.fetch(url)


@dataclass
class World:
    linked: Linked
    fuji: Organization
    nordsee: Organization
    hayabusa: Organization
    muster: Organization
    trust_lists: tuple[TrustList, ...]
    fetcher: WorldFetcher

    def config(self) -> TrustConfig:
        """Muster's trust: the German root, the bridge route and both trust lists."""
        return TrustConfig(
            scheme=GERMANY,
            anchors=(self.linked.root(self.linked.de),),
            lotl=lotl(self.linked.root(self.linked.bridge)),
            trust_lists=self.trust_lists,
            reference=ITG,
            known_schemes=(JAPAN,),
        )

    def verifier(
        self,
        *,
        trust_lists: tuple[TrustList, ...] | None = None,
        params: VerificationParams | None = None,
    ) -> CredentialVerifier:
        resolver = TrustResolver(self.config(), fetcher=self.fetcher)
        return CredentialVerifier(
            resolver,
            trust_lists=self.trust_lists if trust_lists is None else trust_lists,
            status=StatusListCache(self.fetcher.fetch, status_list_reader(resolver)),
            params=params,
        )

    def issue(
        self,
        issuer: Organization,
        request: dict[str, Any],
        *,
        format: Format = Format.VC_JWT,
        holder: Organization | None = None,
    ) -> str:
        home = issuer.home
        assert home is not None
        draft = credential_from_request(request, issuer=home.credentials.issuer(), at=home.now())
        holder = holder or self.hayabusa
        return home.credentials.issue(draft, format=format, holder=holder.certificate)

    def close(self) -> None:
        self.linked.close()
        for org in (self.fuji, self.nordsee, self.hayabusa, self.muster):
            if org.home is not None:
                org.home.close()


def _organization(tsp: Home, officer: Holder, name: str, identifier: str, level: str) -> Holder:
    holder = new_holder()
    country = identifier[3:5]
    pending = tsp.submit_request(
        ca="ids",
        subject=OrganizationSubject(name=name, country=country, identifier=identifier),
        level=level,
        csr_data=holder.csr(),
    )
    holder.certificate = issued(decide(tsp, pending.id, officer))  # type: ignore[union-attr]
    return holder


def _issuer_home(path: Path, org: Organization, port: int) -> Home:
    import os

    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    home = Home.init(
        path / org.name.split()[0].lower(),
        node_name=org.name,
        http_port=port,
        clock=FixedClock(NOW),
    )
    from trustbridge.pki.keys import private_key_pem

    home.credentials.set_issuer(
        private_key_pem(org.holder.key),
        org.chain,
        secret=SecretSource(env=PASSPHRASE_ENV),
    )
    return home


def _list(
    scheme: TrustScheme,
    tsp: Home,
    providers: list[tuple[Organization, ServiceKind, tuple[str, ...], ServiceStatus]],
) -> TrustList:
    """The scheme's list of its TSP (as the resolver tests build it) and the bodies."""
    national = national_list(tsp, scheme)
    bodies = tuple(
        Provider(
            name=org.name,
            country=scheme.code.upper(),
            organization_identifier=org.identifier,
            services=(
                Service(
                    name=f"{org.name} {kind.value}",
                    kind=kind,
                    certificates=(org.certificate,),
                    status_history=(StatusChange(status, SINCE),),
                    scope=scope,
                ),
            ),
        )
        for org, kind, scope, status in providers
    )
    return replace(national, providers=national.providers + bodies)


def accreditation_lists(
    world: World,
    *,
    fuji: ServiceStatus = ServiceStatus.GRANTED,
    fuji_scope: tuple[str, ...] = FUJI_SCOPE,
) -> tuple[TrustList, ...]:
    linked = world.linked
    return (
        _list(
            GERMANY,
            linked.de,
            [(world.nordsee, ServiceKind.AUDITOR, NORDSEE_SCOPE, ServiceStatus.GRANTED)],
        ),
        _list(JAPAN, linked.jp, [(world.fuji, ServiceKind.CAB, fuji_scope, fuji)]),
    )


def build_world(path: Path) -> World:
    linked = build_linked(path)
    de_chain = linked.de.chain_of("ids")[:-1]
    jp_chain = linked.jp.chain_of("ids")[:-1]

    def org(tsp: Home, officer: Holder, name: str, identifier: str, level: str) -> Organization:
        holder = _organization(tsp, officer, name, identifier, level)
        assert holder.certificate is not None
        chain = (holder.certificate, *(de_chain if tsp is linked.de else jp_chain))
        return Organization(name, identifier, holder, chain)

    fuji = org(
        linked.jp,
        linked.jp_officer,
        "Fuji Conformity Assessment Co.",
        "NTRJP-5010001077777",
        "jp-level3",
    )
    hayabusa = org(
        linked.jp, linked.jp_officer, "Hayabusa Sensor Components K.K.", HAYABUSA_ID, "jp-level3"
    )
    nordsee = org(
        linked.de, linked.de_officer, "Nordsee Certification GmbH", "VATDE-555444333", "de-high"
    )
    muster = org(linked.de, linked.de_officer, "Muster Maschinenbau GmbH", MUSTER_ID, "de-high")
    for port, issuer in enumerate((fuji, nordsee, hayabusa), start=18201):
        issuer.home = _issuer_home(path, issuer, port)
    for home in (linked.de, linked.jp):
        home.status.issue_crls("ids")
    fetcher = WorldFetcher(
        HomesFetcher(linked.homes), [o.home for o in (fuji, nordsee, hayabusa) if o.home]
    )
    world = World(linked, fuji, nordsee, hayabusa, muster, (), fetcher)
    world.trust_lists = accreditation_lists(world)
    return world


def at(days: float = 0) -> datetime:
    return NOW + timedelta(days=days)


def pem(certificates: tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


# -- requests -----------------------------------------------------------------------------------


#: Hayabusa itself as the subject of a credential.
HAYABUSA = {
    "element": "organization",
    "name": "Hayabusa Sensor Components K.K.",
    "organization": HAYABUSA_ID,
}


#: Hayabusa's pressure sensor model as the subject of a credential.
HPS_200 = {
    "element": "product",
    "name": "HPS-200 pressure sensor",
    "organization": HAYABUSA_ID,
    "partNumber": "HPS-200",
    "globalAssetId": "https://hayabusa.example/aas/HPS-200",
}


def sensor_safety(value: str = "SIL2") -> dict[str, Any]:
    return {
        "subject": dict(HPS_200),
        "claims": [{"criterion": "iec-61508", "value": value, "scope": "sensor model HPS-200"}],
        "evidence": {"kind": "certificate", "reference": "FCA-61508-0042"},
    }


def isms_certificate() -> dict[str, Any]:
    return {
        "subject": dict(HAYABUSA),
        "claims": [
            {"criterion": "iso-iec-27001", "value": True, "scope": "design and production, Nagoya"},
        ],
        "evidence": {"kind": "certificate", "reference": "FCA-27001-0007"},
    }


def plant_audit() -> dict[str, Any]:
    return {
        "subject": {
            "element": "system",
            "name": "Hayabusa Nagoya plant",
            "organization": HAYABUSA_ID,
            "location": "Nagoya, JP",
        },
        "claims": [{"criterion": "iec-62443-3-3", "value": "SL2", "scope": "production network"}],
        "evidence": {
            "kind": "audit",
            "reference": "NC-AUD-2026-19",
            "auditor": "Nordsee Certification GmbH, J. Peters",
            "date": "2026-05-20",
            "scope": "OT network of the Nagoya plant",
            "findings": ["two minor findings on patch management"],
            "verdict": "pass-with-findings",
        },
    }


def self_declaration() -> dict[str, Any]:
    return {
        "subject": dict(HAYABUSA),
        "claims": [
            {"criterion": "appi-processing", "value": True, "scope": "customer data"},
            {"criterion": "incident-response", "value": 24, "scope": "security incidents"},
            {"criterion": "business-continuity", "value": True, "scope": "Nagoya plant"},
        ],
        "evidence": {
            "kind": "self-declaration",
            "statement": "Declared by the management of Hayabusa Sensor Components K.K.",
        },
    }
