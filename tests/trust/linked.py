"""Three linked homes for the trust tests: a German TSP, a Japanese TSP and the bridge.

Each home has its own root; the bridge (a root of the ``itg`` reference scheme) and both
national roots cross-certify each other with policy mappings onto the reference levels. A
:class:`HomesFetcher` answers the URLs the certificates name from the homes themselves (CRLs,
AIA ``issuers.p7c``, SIA ``issued.p7c``), as the nodes would over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from tests.homes import NOW, PASSPHRASE, PASSPHRASE_ENV, Holder, issued, new_holder
from trustbridge.clock import FixedClock
from trustbridge.errors import NotFoundError
from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.pki.cross import CrossCertificateSpec
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import PersonSubject, Role, SubjectKind
from trustbridge.trust.paths import FetchError
from trustbridge.trust.reference import GERMANY, ITG, JAPAN
from trustbridge.trust.schemes import TrustScheme

SPEC = KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))
DOWN = {
    "de": ("de-basic", "de-substantial", "de-high"),
    "jp": ("jp-level1", "jp-level2", "jp-level3"),
}
REFERENCE = ("itg-loa1", "itg-loa2", "itg-loa3")


@dataclass
class Linked:
    de: Home
    jp: Home
    bridge: Home
    #: Person identities at the highest level of each scheme.
    de_person: x509.Certificate
    jp_person: x509.Certificate
    #: The registration officers (the persons above, with their keys).
    de_officer: Holder
    jp_officer: Holder

    @property
    def homes(self) -> tuple[Home, ...]:
        return (self.de, self.jp, self.bridge)

    def root(self, home: Home) -> x509.Certificate:
        return home.chain_of(home.cas()[0].slug)[-1]

    def close(self) -> None:
        for home in self.homes:
            home.close()


def _home(path: Path, name: str, port: int, schemes: Sequence[TrustScheme]) -> Home:
    home = Home.init(path / name, node_name=name, clock=FixedClock(NOW), http_port=port)
    for scheme in schemes:
        home.create_scheme(scheme)
    return home


def _national(home: Home, scheme: str, country: str, name: str) -> Holder:
    home.create_root_ca(
        scheme=scheme, name=f"{name} Root CA", slug="root", country=country, key=SPEC
    )
    home.create_issuing_ca(
        parent="root",
        name=f"{name} Identity CA",
        slug="ids",
        kinds=[SubjectKind.ORGANIZATION, SubjectKind.PERSON],
        roles=[Role.REGISTRATION_OFFICER],
        key=SPEC,
    )
    officer = new_holder()
    person = home.bootstrap_officer(
        ca="ids",
        subject=PersonSubject(
            given_name="Kei" if country == "JP" else "Anna",
            surname="Sato" if country == "JP" else "Schmidt",
            country=country,
            organization=f"{name} Trust Services",
            roles=frozenset({Role.REGISTRATION_OFFICER}),
        ),
        level=DOWN[scheme][-1],
        csr_data=officer.csr(),
    )
    officer.certificate = issued(person)
    return officer


def mappings(home: Home, issuer: Sequence[str], subject: Sequence[str]) -> CrossCertificateSpec:
    return CrossCertificateSpec(
        mappings=home.bridge.parse_mappings(
            [f"{a}={b}" for a, b in zip(issuer, subject, strict=True)]
        )
    )


def cross(issuer: Home, subject: Home, spec: CrossCertificateSpec) -> x509.Certificate:
    """``issuer``'s root certifies ``subject``'s root; ``subject`` imports the certificate."""
    info = issuer.bridge.cross_certify("root", subject.chain_of("root")[-1], spec)
    subject.bridge.import_cross_certificate(info.certificate)
    return info.certificate


def build_linked(path: Path, *, jp_levels: Sequence[str] = DOWN["jp"]) -> Linked:
    """The homes, cross-certified both ways between each national root and the bridge.

    ``jp_levels``: the Japanese levels the bridge maps ``itg-loa1..3`` onto (drop one to
    remove that mapping from the bridge's certificate for the Japanese root).
    """
    import os

    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    de = _home(path, "de-tsp", 18101, [GERMANY, ITG, JAPAN])
    jp = _home(path, "jp-tsp", 18102, [JAPAN, ITG, GERMANY])
    bridge = _home(path, "bridge", 18103, [ITG, GERMANY, JAPAN])
    de_officer = _national(de, "de", "DE", "Rheintal")
    jp_officer = _national(jp, "jp", "JP", "Sakura")
    bridge.create_root_ca(
        scheme="itg", name="ITG Bridge CA", slug="root", country="DE", key=SPEC, path_length=None
    )
    ref_for_jp = [r for r, j in zip(REFERENCE, DOWN["jp"], strict=True) if j in jp_levels]
    cross(de, bridge, mappings(de, DOWN["de"], REFERENCE))
    cross(bridge, jp, mappings(bridge, ref_for_jp, jp_levels))
    cross(jp, bridge, mappings(jp, DOWN["jp"], REFERENCE))
    cross(bridge, de, mappings(bridge, REFERENCE, DOWN["de"]))
    for home in (de, jp, bridge):
        for info in home.cas():
            home.status.issue_crls(info.slug)
    assert de_officer.certificate is not None and jp_officer.certificate is not None
    return Linked(
        de, jp, bridge, de_officer.certificate, jp_officer.certificate, de_officer, jp_officer
    )


@dataclass
class HomesFetcher:
    """Answers the URLs the homes' certificates name, from the homes (no HTTP server)."""

    homes: Sequence[Home]
    count: int = 0

    def fetch(self, url: str) -> bytes:
        self.count += 1
        parts = urlsplit(url)
        for home in self.homes:
            if not url.startswith(home.config.base_url.rstrip("/") + "/"):
                continue
            segments = parts.path.strip("/").split("/")
            if len(segments) != 3 or segments[0] != "pki":
                break
            slug, leaf = segments[1], segments[2]
            try:
                if leaf == "crl":
                    return home.status.latest_crl(slug).der
                if leaf == "delta-crl":
                    return home.status.latest_crl(slug, delta=True).der
                if leaf == "issuers.p7c":
                    return _p7c(home.bridge.issuers_bundle(slug))
                if leaf == "issued.p7c":
                    return _p7c(home.bridge.issued_bundle(slug))
            except NotFoundError:
                break
        raise FetchError(f"{url} is not served by the test homes")


def _p7c(certificates: list[x509.Certificate]) -> bytes:
    return pkcs7.serialize_certificates(certificates, Encoding.DER)
