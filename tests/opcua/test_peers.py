"""What deciding on a peer costs, what it logs and which status it answers with: the
validator's side of the session checks, without OPC UA machinery (tests/opcua/test_sessions.py
runs them in sessions)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tests.homes import NOW
from tests.opcua.world import SESSION_CLOCK, OpcUaWorld
from trustbridge.opcua import PeerRole, PeerValidator, PeerVerdict
from trustbridge.opcua.peers import CheckLimits
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import SubjectKind, profile_for
from trustbridge.trust.paths import Fetcher, FetchError
from trustbridge.trust.resolver import Route, TrustResolver

#: What a peer's certificate may say about itself to forge a line of the station's log.
FORGED = "E\n06:30:41 accepted client CN=Muster Quality Gateway"


#: What our profile gives an RSA machine identity: the key usage OPC UA asks for.
OPCUA_KEY_USAGE = profile_for(SubjectKind.MACHINE).key_usage_extension(KeyType.RSA2048)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    generated = generate_private_key(KeyType.RSA2048)
    assert isinstance(generated, rsa.RSAPrivateKey)
    return generated


def certificate(
    key: rsa.RSAPrivateKey, common_name: str, uris: Sequence[str], issuers: Sequence[str] = ()
) -> x509.Certificate:
    """A client certificate OPC UA can use, issued by nobody anyone trusts."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nobody's CA")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(OPCUA_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    )
    if issuers:
        access = [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
            )
            for url in issuers
        ]
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return builder.sign(key, hashes.SHA256())


class Recording:
    """A fetcher that records the URLs asked for; those ``fails`` picks are unreachable."""

    def __init__(self, inner: Fetcher, fails: Callable[[str], bool] = lambda url: False) -> None:
        self.inner = inner
        self.fails = fails
        self.urls: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fails(url):
            raise FetchError(f"{url} is unreachable")
        return self.inner.fetch(url)


class Blocking:
    """A fetcher that holds every fetch until :attr:`release` is set."""

    def __init__(self, inner: Fetcher) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self, url: str) -> bytes:
        self.entered.set()
        self.release.wait(30)
        return self.inner.fetch(url)


def validator(world: OpcUaWorld, fetcher: Fetcher, **options: object) -> PeerValidator:
    """The Japanese station's validator (the bridge route), fetching through ``fetcher``."""
    config = world.config("jp", Route.BRIDGE)
    return PeerValidator(
        role=PeerRole.CLIENT,
        resolver=lambda: TrustResolver(config, fetcher=fetcher, cache=False),
        clock=SESSION_CLOCK,
        **options,  # type: ignore[arg-type]
    )


def test_what_a_peer_says_about_itself_cannot_forge_log_lines(
    world: OpcUaWorld, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trustbridge.opcua")
    lines: list[PeerVerdict] = []
    checker = validator(world, world.fetcher, on_verdict=lines.append)
    forged = certificate(key, FORGED, ["urn:evil", "urn:x\n06:30:42 accepted client CN=Y"])
    verdict = asyncio.run(checker.check(forged, "urn:evil\u2028", address="192.0.2.7:4711"))
    assert not verdict.accepted and verdict.status == "BadCertificateUriInvalid"
    assert lines == [verdict]
    for text in (verdict.subject, verdict.reason, verdict.application_uri):
        assert text.isprintable()
    assert verdict.subject == "CN=E\\n06:30:41 accepted client CN=Muster Quality Gateway"
    assert "urn:x\\n06:30:42 accepted" in verdict.reason
    assert verdict.application_uri == "urn:evil\\u2028"
    (record,) = [r for r in caplog.records if r.name == "trustbridge.opcua"]
    assert record.getMessage().isprintable()
    assert " from 192.0.2.7:4711 (BadCertificateUriInvalid)" in record.getMessage()


def test_the_peers_subject_does_not_choose_the_status(
    world: OpcUaWorld, key: rsa.RSAPrivateKey
) -> None:
    claims = "CN=X is revoked: CRL indicates it was revoked at 12:00"
    refused = asyncio.run(
        validator(world, world.fetcher).check(certificate(key, claims, ["urn:x"]), "urn:x")
    )
    assert refused.status == "BadCertificateUntrusted"
    assert "no path from" in refused.reason


def test_unreachable_revocation_information_refuses_as_unknown(world: OpcUaWorld) -> None:
    crls = Recording(world.fetcher, fails=lambda url: url.endswith("/crl"))
    reader = world.reader
    refused = asyncio.run(validator(world, crls).check(reader.certificate, reader.application_uri))
    assert not refused.accepted
    assert refused.status == "BadCertificateRevocationUnknown"
    assert "no revocation information" in refused.reason
    assert any(url.endswith("/crl") for url in crls.urls)


def test_a_peer_cannot_make_the_check_fetch_without_bounds(
    world: OpcUaWorld, key: rsa.RSAPrivateKey
) -> None:
    # The peer's certificate names the URLs its issuers are fetched from (AIA): any host, as
    # many as it likes. Path building alone would fetch 100 of them (per route), 5 s each.
    issuers = [f"http://10.0.{i // 250}.{i % 250}/issuer.p7c" for i in range(150)]
    peer = certificate(key, "Many Issuers", ["urn:many"], issuers)
    fetcher = Recording(world.fetcher, fails=lambda url: url in issuers)
    checker = validator(world, fetcher, limits=CheckLimits(max_fetches=12))
    refused = asyncio.run(checker.check(peer, "urn:many"))
    assert refused.status == "BadCertificateUntrusted"
    assert len(fetcher.urls) == 12
    # The default bound leaves room for the fetches an accepted peer needs.
    assert CheckLimits().max_fetches >= 4 * 8
    reader = world.reader
    fetcher.urls.clear()
    accepted = asyncio.run(
        validator(world, fetcher, limits=CheckLimits(max_fetches=12)).check(
            reader.certificate, reader.application_uri
        )
    )
    assert accepted.accepted, accepted.reason
    assert len(fetcher.urls) <= 12


def test_checks_beyond_the_limits_are_refused_at_once(world: OpcUaWorld) -> None:
    blocking = Blocking(world.fetcher)
    checker = validator(
        world, blocking, limits=CheckLimits(max_running=1, max_waiting=1, max_per_address=1)
    )
    reader = world.reader

    def check(address: str) -> asyncio.Task[PeerVerdict]:
        return asyncio.create_task(
            checker.check(reader.certificate, reader.application_uri, address=address)
        )

    async def scenario() -> list[PeerVerdict]:
        running = check("192.0.2.1:40001")
        await asyncio.to_thread(blocking.entered.wait, 30)
        waiting = check("192.0.2.2:40001")
        await asyncio.sleep(0)  # it waits for its turn now
        same_address = await check("192.0.2.1:40002")
        too_many = await check("192.0.2.3:40001")
        blocking.release.set()
        return [same_address, too_many, await running, await waiting]

    same_address, too_many, first, second = asyncio.run(scenario())
    assert same_address.status == too_many.status == "BadServerTooBusy"
    assert "check(s) of 192.0.2.1 are under way (max_per_address)" in same_address.reason
    assert "1 other check(s) are waiting (max_waiting)" in too_many.reason
    assert first.accepted and second.accepted
    assert [v.address for v in checker.verdicts] == [
        "192.0.2.1:40002",
        "192.0.2.3:40001",
        "192.0.2.1:40001",
        "192.0.2.2:40001",
    ]


def test_a_check_not_decided_in_time_is_refused(world: OpcUaWorld) -> None:
    blocking = Blocking(world.fetcher)
    checker = validator(world, blocking, limits=CheckLimits(max_seconds=0.2))
    reader = world.reader

    async def scenario() -> PeerVerdict:
        try:
            return await checker.check(reader.certificate, reader.application_uri)
        finally:
            blocking.release.set()  # the thread ends (nobody waits for it any more)

    refused = asyncio.run(scenario())
    assert refused.status == "BadServerTooBusy"
    assert refused.reason == "not decided within 0.2 s (max_seconds)"


def test_a_check_that_breaks_refuses(world: OpcUaWorld) -> None:
    def broken() -> TrustResolver:
        raise RuntimeError("the home's database is locked")

    checker = PeerValidator(role=PeerRole.CLIENT, resolver=broken, clock=SESSION_CLOCK)
    reader = world.reader
    refused = asyncio.run(checker.check(reader.certificate, reader.application_uri))
    assert not refused.accepted and refused.status == "BadCertificateUntrusted"
    assert refused.reason == (
        "not checked, the check failed with RuntimeError: the home's database is locked"
    )


def test_check_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="check limits out of range"):
        CheckLimits(max_running=0)


def test_a_long_running_validator_keeps_only_recent_verdicts_and_counts_all(
    world: OpcUaWorld, key: rsa.RSAPrivateKey
) -> None:
    handed: list[PeerVerdict] = []
    checker = validator(world, world.fetcher, keep=3, on_verdict=handed.append)
    peer = certificate(key, "CN=Again", ["urn:again"])
    refused = [checker.refuse(peer, "urn:again", f"refusal {i}", status="BadX") for i in range(7)]
    assert checker.verdicts == refused[-3:]
    assert checker.refusals == refused[-3:]
    assert handed == refused  # every verdict still reaches the hook
    assert (checker.accepted_total, checker.refused_total) == (0, 7)
