"""The reference scenario's home for tests: a scheme, a root, two issuing CAs, an officer.

Shared by the home, store and node tests (the node tests serve it with `trustbridge serve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.clock import Clock, FixedClock
from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import Issued, RequestInfo
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for
from trustbridge.pki.profiles import OrganizationSubject, PersonSubject, Role, SubjectKind
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.reference import GERMANY

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PASSPHRASE_ENV = "TB_TEST_CA_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"

MUSTER = OrganizationSubject(
    name="Muster Maschinenbau GmbH",
    country="DE",
    identifier="VATDE-123456789",
    locality="Stuttgart",
)


@dataclass
class Holder:
    """A key and, once issued, the certificate of someone the tests act as."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate | None = None

    @property
    def signer(self) -> FileSigner:
        return FileSigner(self.key)

    def csr(self) -> bytes:
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "holder")]))
            .sign(self.key, hash_for(KeyType.P256))
        )
        return request.public_bytes(Encoding.PEM)


def new_holder() -> Holder:
    key = generate_private_key(KeyType.P256)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Holder(key)


def decide(
    home: Home, request_id: str, officer: Holder, decision: str = "approve"
) -> RequestInfo | Issued:
    """Sign and apply an officer's decision as the CLI does."""
    info = home.request(request_id)
    statement = Decision(request_id, info.digest, decision, home.now(), "test")  # type: ignore[arg-type]
    assert officer.certificate is not None
    return home.decide(
        request_id,
        decision=statement,
        signature=sign_statement(statement.payload(), officer.signer),
        officer=officer.certificate,
    )


def issued(result: RequestInfo | Issued) -> x509.Certificate:
    assert isinstance(result, Issued), f"expected an issuance, got {result}"
    return result.certificates[0]


def officer_subject(
    organization: str = "Rheintal Trust Services GmbH",
    given_name: str = "Anna",
    surname: str = "Schmidt",
) -> PersonSubject:
    """A German registration officer of ``organization``."""
    return PersonSubject(
        given_name=given_name,
        surname=surname,
        country="DE",
        organization=organization,
        roles=frozenset({Role.REGISTRATION_OFFICER}),
    )


def build_reference_home(
    path: Path,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    http_port: int = 8080,
    https_port: int = 8443,
) -> tuple[Home, Holder]:
    """Scheme de, a P-256 root, identity and device CAs, a bootstrapped registration officer.

    The clock is pinned to :data:`NOW` unless one is given (a served node needs the real one).
    """
    home = Home.init(
        path,
        node_name="rheintal",
        database_url=database_url,
        clock=clock or FixedClock(NOW),
        http_port=http_port,
        https_port=https_port,
    )
    home.create_scheme(GERMANY)
    spec = KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))
    home.create_root_ca(
        scheme="de", name="DE Industrial Root CA", slug="de-root", country="DE", key=spec
    )
    home.create_issuing_ca(
        parent="de-root",
        name="Rheintal Identity CA",
        slug="ids",
        kinds=[SubjectKind.ORGANIZATION, SubjectKind.PERSON],
        roles=[Role.REGISTRATION_OFFICER, Role.AUTHORIZED_SIGNATORY],
        key=spec,
    )
    home.create_issuing_ca(
        parent="de-root",
        name="Rheintal Device CA",
        slug="devices",
        kinds=[SubjectKind.MACHINE, SubjectKind.SOFTWARE],
        levels=["de-basic", "de-substantial"],
        key=spec,
    )
    officer = new_holder()
    result = home.bootstrap_officer(
        ca="ids",
        subject=officer_subject(),
        level="de-high",
        csr_data=officer.csr(),
    )
    officer.certificate = issued(result)
    return home, officer
