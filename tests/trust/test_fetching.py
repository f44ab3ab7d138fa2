"""What the path builder fetches for a certificate anyone may present: never from addresses no
PKI repository lives at, within a time budget per search, into a bounded cache."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from tests.homes import NOW
from trustbridge.trust.paths import (
    FetchError,
    HttpFetcher,
    PathBuilder,
    PathSearchError,
    SearchLimits,
    refused_address,
)
from trustbridge.trust.validation import ValidationParams


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:169.254.1.1", "a link-local address (169.254.1.1)"),
        ("ff02::1", "a multicast address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - the address refused
        ("240.0.0.1", "a reserved address"),
    ],
)
def test_addresses_no_repository_lives_at_are_refused(host: str, said: str) -> None:
    refused = refused_address(host, 80)
    assert refused is not None and said in refused


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "10.1.2.3"])
def test_loopback_and_private_networks_stay_allowed(host: str) -> None:
    assert refused_address(host, 80) is None


def test_the_http_fetcher_refuses_before_connecting() -> None:
    fetcher = HttpFetcher(timeout=0.5)
    with pytest.raises(FetchError, match=r"169\.254\.169\.254/latest.*link-local"):
        fetcher.fetch("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchError, match="only http and https"):
        fetcher.fetch("file:///etc/passwd")
    with pytest.raises(FetchError, match="port is not a number"):
        fetcher.fetch("http://127.0.0.1:port/x.crl")


@dataclass
class _SlowFetcher:
    """Every fetch fails after ``cost`` seconds of a fake clock."""

    cost: float
    now: float = 0.0
    urls: list[str] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def fetch(self, url: str) -> bytes:
        self.urls.append(url)
        self.now += self.cost
        raise FetchError(f"{url} timed out")


def _stranger(urls: int) -> tuple[x509.Certificate, x509.Certificate]:
    """An anchor, and a certificate of an unknown issuer whose AIA names ``urls`` URLs."""
    key = ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, issuer: str, aia: int) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
        )
        if aia:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(f"http://10.0.0.{i}/ca.p7c"),
                        )
                        for i in range(aia)
                    ]
                ),
                critical=False,
            )
        return builder.sign(key, hashes.SHA256())

    return certificate("Anchor", "Anchor", 0), certificate("Stranger", "Nobody CA", urls)


def test_a_search_stops_at_its_fetch_time_budget() -> None:
    anchor, stranger = _stranger(urls=10)
    slow = _SlowFetcher(cost=12.0)
    builder = PathBuilder(anchors=[anchor], fetcher=slow, clock=slow.clock)
    with pytest.raises(PathSearchError) as raised:
        builder.build(stranger, ValidationParams(at=NOW))
    # 12 s each: after three fetches (36 s) the 30 s budget is spent; the rest is not fetched.
    assert len(slow.urls) == 3
    assert raised.value.limit == "max_fetch_seconds=30"
    assert "max_fetch_seconds=30" in raised.value.message


def test_the_budget_is_per_search_and_configurable() -> None:
    anchor, stranger = _stranger(urls=10)
    slow = _SlowFetcher(cost=1.0)
    limits = SearchLimits(max_fetch_seconds=100.0)
    builder = PathBuilder(anchors=[anchor], fetcher=slow, clock=slow.clock, limits=limits)
    with pytest.raises(PathSearchError) as raised:
        builder.build(stranger, ValidationParams(at=NOW))
    assert len(slow.urls) == 10 and raised.value.limit is None


def test_the_fetch_cache_is_bounded() -> None:
    anchor, stranger = _stranger(urls=10)
    slow = _SlowFetcher(cost=0.0)
    builder = PathBuilder(anchors=[anchor], fetcher=slow, clock=slow.clock, max_cached_fetches=4)
    with pytest.raises(PathSearchError):
        builder.build(stranger, ValidationParams(at=NOW))
    assert len(slow.urls) == 10
    # Only the newest four answers are remembered, oldest dropped first.
    assert list(builder._fetched) == slow.urls[-4:]
    with pytest.raises(PathSearchError):
        builder.build(stranger, ValidationParams(at=NOW))
    assert len(slow.urls) == 20 and len(builder._fetched) == 4
