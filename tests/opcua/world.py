"""The OPC UA test world: the linked DE/JP homes of the trust tests (tests/trust/linked.py) with
a device CA on each side and RSA application instance identities for a Japanese test station
and a German reader, plus the outsiders a station must refuse.

The relying parties' trust is declared per route, as in tests/trust/test_resolver.py: the bridge
route alone (own root, no lists) or the trust-list route alone (the LOTL and both national
lists, no own root). Revocation information comes from the homes that issued the certificates
(:class:`~tests.trust.linked.HomesFetcher` answers the CRL and AIA URLs they name), read afresh
for every session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.homes import NOW, PASSPHRASE_ENV, Holder, decide, issued
from tests.pki.pkifactory import build_scenario_pki
from tests.trust.linked import HomesFetcher, Linked, build_linked
from tests.trust.test_resolver import lotl, national_list
from trustbridge import oids
from trustbridge.clock import FixedClock
from trustbridge.demo.opcua import _self_signed
from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import RequestInfo
from trustbridge.opcua import ApplicationIdentity, PeerRole, PeerValidator
from trustbridge.opcua.identity import UserIdentity
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import (
    MachineSubject,
    PersonSubject,
    Role,
    SoftwareSubject,
    SubjectKind,
)
from trustbridge.pki.revocation import Reason
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.reference import GERMANY, ITG, JAPAN
from trustbridge.trust.resolver import Route, TrustConfig, TrustResolver

#: When the sessions happen: a minute after the homes issued everything (their clock is NOW).
SESSION_CLOCK = FixedClock(NOW + timedelta(minutes=1))
STATION_URI = "urn:hayabusa:eol-test-station:EOL-3"
HAYABUSA = "Hayabusa Sensor Components K.K."
HAYABUSA_ID = "NTRJP-3180001012345"
MUSTER = "Muster Maschinenbau GmbH"
MUSTER_ID = "VATDE-123456789"


@dataclass
class OpcUaWorld:
    linked: Linked
    #: Hayabusa's end-of-line test station (a JP machine identity, P-256 device CA above it).
    station: ApplicationIdentity
    #: The same station's identity from an RSA-3072 OPC UA CA (an RSA-signed chain).
    rsa_station: ApplicationIdentity
    #: A station identity a test revokes.
    doomed_station: ApplicationIdentity
    #: Muster's reader (a DE software identity).
    reader: ApplicationIdentity
    #: A Muster machine whose identity was revoked (key compromise) before any session.
    revoked_reader: ApplicationIdentity
    #: A self-signed reader, and one from a scheme nobody linked.
    self_signed: ApplicationIdentity
    outsider: ApplicationIdentity
    #: People of Muster with RSA person identities (DE staff CA): an operator, a colleague
    #: without the operator role, an operator whose identity was revoked before any session.
    operator: UserIdentity
    clerk: UserIdentity
    revoked_operator: UserIdentity
    fetcher: HomesFetcher = field(init=False)

    def __post_init__(self) -> None:
        self.fetcher = HomesFetcher(self.linked.homes)

    def config(self, side: str, route: Route) -> TrustConfig:
        """The trust of the German (``de``) or Japanese (``jp``) relying party, one route only."""
        world = self.linked
        own = world.de if side == "de" else world.jp
        scheme, partner = (GERMANY, JAPAN) if side == "de" else (JAPAN, GERMANY)
        if route is Route.BRIDGE:
            return TrustConfig(
                scheme=scheme, anchors=(world.root(own),), reference=ITG, known_schemes=(partner,)
            )
        return TrustConfig(
            scheme=scheme,
            lotl=lotl(world.root(world.bridge)),
            trust_lists=(national_list(world.de, GERMANY), national_list(world.jp, JAPAN)),
            reference=ITG,
            known_schemes=(partner,),
        )

    def resolvers(self, side: str, route: Route) -> Callable[[], TrustResolver]:
        """A fresh resolver per session, fetching from the issuing homes."""
        config = self.config(side, route)
        return lambda: TrustResolver(config, fetcher=self.fetcher, cache=False)

    def validator(
        self, side: str, route: Route, role: PeerRole, **options: object
    ) -> PeerValidator:
        return PeerValidator(
            role=role,
            resolver=self.resolvers(side, route),
            clock=SESSION_CLOCK,
            **options,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self.linked.close()


def _csr(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opc ua application")])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(Encoding.PEM)


def issue(
    home: Home,
    ca: str,
    subject: MachineSubject | SoftwareSubject,
    level: str,
    key_type: KeyType = KeyType.RSA2048,
) -> ApplicationIdentity:
    """An RSA identity released by a one-time enrolment token, with its chain (no anchor)."""
    key = generate_private_key(key_type)
    assert isinstance(key, rsa.RSAPrivateKey)
    organization = (
        subject.manufacturer if isinstance(subject, MachineSubject) else subject.organization
    )
    result = home.submit_request(
        ca=ca,
        subject=subject,
        level=level,
        csr_data=_csr(key),
        enrolment_token=home.create_enrolment_token(organization=organization),
    )
    certificate = issued(result)
    return ApplicationIdentity(FileSigner(key, "test"), (certificate, *home.chain_of(ca)[:-1]))


def station_subject(serial: str = "EOL-3") -> MachineSubject:
    return MachineSubject(
        manufacturer=HAYABUSA,
        model="HPS EOL Test Station",
        serial_number=serial,
        country="JP",
        application_uri=f"urn:hayabusa:eol-test-station:{serial}",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )


def reader_subject() -> SoftwareSubject:
    return SoftwareSubject(
        name="Muster Quality Gateway OPC UA Client",
        version="1.0.0",
        organization=MUSTER,
        organization_identifier=MUSTER_ID,
        country="DE",
        dns_names=("localhost",),
    )


def person_subject(given_name: str, surname: str, *roles: Role) -> PersonSubject:
    return PersonSubject(
        given_name=given_name,
        surname=surname,
        country="DE",
        organization=MUSTER,
        organization_identifier=MUSTER_ID,
        roles=frozenset(roles),
    )


def issue_person(
    home: Home, officer: Holder, subject: PersonSubject, level: str = "de-substantial"
) -> UserIdentity:
    """An RSA person identity from the staff CA, approved by a registration officer."""
    key = generate_private_key(KeyType.RSA2048)
    assert isinstance(key, rsa.RSAPrivateKey)
    pending = home.submit_request(ca="staff", subject=subject, level=level, csr_data=_csr(key))
    assert isinstance(pending, RequestInfo)
    certificate = issued(decide(home, pending.id, officer))
    return UserIdentity(FileSigner(key, "test"), (certificate, *home.chain_of("staff")[:-1]))


def self_signed_reader() -> ApplicationIdentity:
    """A reader with a self-signed certificate that is otherwise a fine OPC UA certificate (the
    demo's, which turns it away too)."""
    return _self_signed("urn:self-signed:reader", NOW)


def outsider_reader() -> ApplicationIdentity:
    """A reader from a scheme nobody cross-certified or listed (the PKI tests' own root)."""
    pki = build_scenario_pki()
    key = generate_private_key(KeyType.RSA2048)
    certificate = pki.devices.issue(
        subject=reader_subject(), public_key=key.public_key(), level=oids.DE_SUBSTANTIAL, at=NOW
    )
    chain = (certificate, pki.devices.certificate)
    return ApplicationIdentity(FileSigner(key, "outsider"), chain)


def build_world(path: Path) -> OpcUaWorld:
    linked = build_linked(path)
    spec = KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))
    for home, country in ((linked.de, "DE"), (linked.jp, "JP")):
        home.create_issuing_ca(
            parent="root",
            name=f"{country} Device CA",
            slug="devices",
            kinds=[SubjectKind.MACHINE, SubjectKind.SOFTWARE],
            key=spec,
        )
    # The RSA CA for stacks that insist on an RSA-signed application instance certificate.
    linked.jp.create_issuing_ca(
        parent="root",
        name="JP OPC UA CA",
        slug="opcua",
        kinds=[SubjectKind.MACHINE, SubjectKind.SOFTWARE],
        key=KeySpec(KeyType.RSA3072, secret=SecretSource(env=PASSPHRASE_ENV)),
    )
    # Muster's staff: people who act through OPC UA clients (RSA keys, X.509 user tokens).
    linked.de.create_issuing_ca(
        parent="root",
        name="DE Staff CA",
        slug="staff",
        kinds=[SubjectKind.PERSON],
        roles=[Role.OPERATOR],
        key=spec,
    )
    jp, de = linked.jp, linked.de
    for home, ca in ((de, "devices"), (de, "staff"), (jp, "devices"), (jp, "opcua")):
        home.status.issue_crls(ca)
    world = OpcUaWorld(
        linked=linked,
        station=issue(jp, "devices", station_subject(), "jp-level2"),
        rsa_station=issue(jp, "opcua", station_subject(), "jp-level2"),
        doomed_station=issue(jp, "devices", station_subject("EOL-9"), "jp-level2"),
        reader=issue(de, "devices", reader_subject(), "de-substantial"),
        revoked_reader=issue(
            de,
            "devices",
            MachineSubject(
                manufacturer=MUSTER,
                model="AM-7",
                serial_number="0001",
                country="DE",
                application_uri="urn:muster:assembly:AM-7:0001",
            ),
            "de-substantial",
        ),
        self_signed=self_signed_reader(),
        outsider=outsider_reader(),
        operator=issue_person(
            de, linked.de_officer, person_subject("Jonas", "Weber", Role.OPERATOR)
        ),
        clerk=issue_person(de, linked.de_officer, person_subject("Lena", "Koch")),
        revoked_operator=issue_person(
            de, linked.de_officer, person_subject("Max", "Braun", Role.OPERATOR)
        ),
    )
    revoke(de, world.revoked_reader)
    revoke(de, world.revoked_operator)
    return world


def revoke(home: Home, identity: ApplicationIdentity | UserIdentity) -> None:
    """Revoke an identity for key compromise (the home reissues its CRLs at once)."""
    home.status.revoke(
        format(identity.certificate.serial_number, "x"), reason=Reason.KEY_COMPROMISE
    )
