"""What the path builder fetches for a certificate anyone may present: never from addresses no
PKI repository lives at, only where the node's allow-list says, within a time budget per
search, into a bounded cache."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from tests.homes import NOW
from trustbridge.errors import ConfigError, InputError
from trustbridge.home.config import CONFIG_FILE, HomeConfig
from trustbridge.trust.paths import (
    FetchAllowList,
    FetchError,
    HttpFetcher,
    PathBuilder,
    PathSearchError,
    SearchLimits,
    fetch_proxy_url,
    refused_address,
    system_resolve,
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
        # Cloud metadata services outside the link-local range.
        ("fd00:ec2::254", "a cloud metadata service address"),
        ("100.100.100.200", "a cloud metadata service address"),
        ("168.63.129.16", "a cloud metadata service address"),
        # IPv6 addresses that carry a refused IPv4 one: 6to4 and Teredo.
        ("2002:a9fe:a9fe::", "a link-local address (169.254.169.254)"),
        ("2001:0:4136:e378:8000:63bf:5601:5601", "a link-local address (169.254.169.254)"),
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
    # A certificate may name any URL: one that cannot be split fails the fetch, nothing worse.
    for url in ("http://[::1/x", "http://a]/", "http://[x]/", "http://[127.0.0.1]/"):
        with pytest.raises(FetchError, match="it is not a valid URL"):
            fetcher.fetch(url)
    # A malformed IDNA label fails the fetch, nothing worse.
    for url in ("http://xn--a.example/x.crl", "http://b\u00fc\u0301cher\u200d.example/"):
        with pytest.raises(FetchError, match="its host is malformed"):
            fetcher.fetch(url)


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


# -- the allow-list ------------------------------------------------------------------------------

CRL = b"a CRL from the loopback repository"


class _Repository(BaseHTTPRequestHandler):
    """Serves ``/ca.crl``; ``/moved`` redirects to a cloud metadata address. Records requests."""

    seen: ClassVar[list[tuple[str, str]]] = []
    #: Proxy-Authorization headers that reached the repository (a proxy must never pass them).
    proxy_credentials: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host", "")))
        if "Proxy-Authorization" in self.headers:
            self.proxy_credentials.append(self.headers["Proxy-Authorization"])
        if self.path == "/ask":  # a repository that answers as if it were a proxy
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="repository"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/ca.crl":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CRL)))
            self.end_headers()
            self.wfile.write(CRL)
        else:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@dataclass
class _Repositories:
    port4: int
    port6: int

    @property
    def seen(self) -> list[tuple[str, str]]:
        return _Repository.seen


@pytest.fixture(scope="module")
def repos() -> Iterator[_Repositories]:
    """One repository on 127.0.0.1 and one on ::1, at ports the system picked."""
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), _Repository),
        _Server6(("::1", 0), _Repository),
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield _Repositories(servers[0].server_address[1], servers[1].server_address[1])
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(autouse=True)
def _fresh_log() -> None:
    _Repository.seen.clear()
    _Repository.proxy_credentials.clear()


@dataclass
class _Dns:
    """A resolver from a table (no real DNS); each name may answer differently on each call."""

    table: dict[str, list[list[str]]]
    asked: list[str] = field(default_factory=list)
    #: Turn a Unicode host into ASCII with Python's "idna" codec (IDNA 2003: ß -> ss) first,
    #: as socket.getaddrinfo (system_resolve) does.
    idna2003: bool = False

    def __call__(self, host: str, port: int) -> list[str]:
        if self.idna2003:
            host = host.encode("idna").decode("ascii")
        self.asked.append(host)
        answers = self.table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def _fetcher(
    allow: list[str] | None,
    dns: dict[str, list[str]] | None = None,
    *,
    proxy: _Proxy | None = None,
    idna2003: bool = False,
) -> HttpFetcher:
    """A fetcher whose own resolver knows only ``dns``; through ``proxy`` where given (the
    proxy resolves with the system's resolver)."""
    table = {name: [addresses] for name, addresses in (dns or {}).items()}
    return HttpFetcher(
        timeout=2.0 if proxy is None else 5.0,
        allow=FetchAllowList(tuple(allow)) if allow is not None else None,
        resolve=_Dns(table, idna2003=idna2003),
        proxy=proxy.url if proxy is not None else None,
    )


def _asked(fetcher: HttpFetcher) -> list[str]:
    assert isinstance(fetcher.resolve, _Dns)
    return fetcher.resolve.asked


def test_an_allowed_name_is_fetched_from_the_address_it_resolved_to(repos: _Repositories) -> None:
    fetcher = _fetcher(
        ["crl.rheintal-trust.example"], {"crl.rheintal-trust.example.": ["127.0.0.1"]}
    )
    # Case and a trailing dot do not matter; the name is resolved by our resolver, once.
    url = f"http://CRL.Rheintal-Trust.example.:{repos.port4}/ca.crl"
    assert fetcher.fetch(url) == CRL
    assert _asked(fetcher) == ["crl.rheintal-trust.example."]
    assert repos.seen == [("/ca.crl", f"crl.rheintal-trust.example.:{repos.port4}")]


def test_a_wildcard_allows_subdomains_only(repos: _Repositories) -> None:
    dns = {
        "crl.fuji-ca.example": ["127.0.0.1"],
        "a.b.fuji-ca.example": ["127.0.0.1"],
        "fuji-ca.example": ["127.0.0.1"],
        "evilfuji-ca.example": ["127.0.0.1"],
    }
    fetcher = _fetcher(["*.fuji-ca.example"], dns)
    for host in ("crl.fuji-ca.example", "a.b.fuji-ca.example"):
        assert fetcher.fetch(f"http://{host}:{repos.port4}/ca.crl") == CRL
    for host in ("fuji-ca.example", "evilfuji-ca.example"):
        url = f"http://{host}:{repos.port4}/ca.crl"
        with pytest.raises(FetchError) as raised:
            fetcher.fetch(url)
        assert raised.value.message == (
            f"not fetching {url}: host {host} is not on this node's fetch allow-list"
        )
    assert len(repos.seen) == 2


def test_a_name_not_on_the_list_is_refused_without_being_resolved(repos: _Repositories) -> None:
    fetcher = _fetcher(["crl.rheintal-trust.example"], {"crl.evil.example": ["127.0.0.1"]})
    url = f"http://crl.evil.example:{repos.port4}/ca.crl"
    with pytest.raises(FetchError) as raised:
        fetcher.fetch(url)
    assert raised.value.message == (
        f"not fetching {url}: host crl.evil.example is not on this node's fetch allow-list"
    )
    assert _asked(fetcher) == [] and repos.seen == []


def test_a_host_that_is_no_dns_name_never_matches_a_name_entry(repos: _Repositories) -> None:
    """A resolver may read ``evil\\.fuji-ca.example`` as the labels evil.fuji-ca, example: a
    name outside the wildcard's zone. Such a host is judged by address, not by name."""
    host = "evil\\.fuji-ca.example"
    fetcher = _fetcher(["*.fuji-ca.example"], {host: ["127.0.0.1"]})
    assert not FetchAllowList(("*.fuji-ca.example",)).allows_name(host)
    url = f"http://{host}:{repos.port4}/ca.crl"
    with pytest.raises(FetchError, match="not on this node's fetch allow-list"):
        fetcher.fetch(url)
    assert repos.seen == []


def test_an_idna_name_matches_its_ascii_form(repos: _Repositories) -> None:
    allow = FetchAllowList(("CRL.Bücher.example.",))
    assert allow.entries == ("crl.xn--bcher-kva.example",)
    fetcher = HttpFetcher(allow=allow, resolve=_Dns({"crl.xn--bcher-kva.example": [["::1"]]}))
    assert fetcher.fetch(f"http://crl.bücher.example:{repos.port6}/ca.crl") == CRL


def test_a_network_allows_the_literals_inside_it(repos: _Repositories) -> None:
    fetcher = _fetcher(["10.20.0.0/16", "127.0.0.0/8", "::1/128"])
    assert fetcher.fetch(f"http://127.0.0.1:{repos.port4}/ca.crl") == CRL
    assert fetcher.fetch(f"http://[::1]:{repos.port6}/ca.crl") == CRL
    outside = _fetcher(["10.20.0.0/16", "2001:db8:1::/48"])
    for url, host in (
        (f"http://127.0.0.1:{repos.port4}/ca.crl", "127.0.0.1"),
        (f"http://[::1]:{repos.port6}/ca.crl", "::1"),
        ("http://10.21.0.1/ca.crl", "10.21.0.1"),
        ("http://[2001:db8:2::1]/ca.crl", "2001:db8:2::1"),
    ):
        with pytest.raises(FetchError) as raised:
            outside.fetch(url)
        assert raised.value.message == (
            f"not fetching {url}: host {host} is not on this node's fetch allow-list"
        )
    assert len(repos.seen) == 2


def test_a_name_is_allowed_by_network_only_if_every_address_lies_inside(
    repos: _Repositories,
) -> None:
    dns = {"crl.sakura.example": ["127.0.0.1"], "crl.mixed.example": ["127.0.0.1", "192.0.2.7"]}
    fetcher = _fetcher(["127.0.0.0/8"], dns)
    assert fetcher.fetch(f"http://crl.sakura.example:{repos.port4}/ca.crl") == CRL
    url = f"http://crl.mixed.example:{repos.port4}/ca.crl"
    with pytest.raises(FetchError) as raised:
        fetcher.fetch(url)
    assert raised.value.message == (
        f"not fetching {url}: host crl.mixed.example is not on this node's fetch allow-list "
        "(it resolves to 192.0.2.7, outside the allowed networks)"
    )
    assert len(repos.seen) == 1


def test_the_refusals_apply_to_names_the_list_allows() -> None:
    fetcher = _fetcher(["*.fuji-ca.example"], {"metadata.fuji-ca.example": ["169.254.169.254"]})
    with pytest.raises(FetchError, match=r"metadata\.fuji-ca\.example is a link-local address"):
        fetcher.fetch("http://metadata.fuji-ca.example/latest/meta-data/")
    # And without a list, to resolved names just the same.
    fetcher = _fetcher(None, {"crl.evil.example": ["127.0.0.1", "fe80::1"]})
    with pytest.raises(FetchError, match=r"crl\.evil\.example is a link-local address \(fe80::1\)"):
        fetcher.fetch("http://crl.evil.example/ca.crl")


def test_the_address_checked_is_the_address_connected_to(repos: _Repositories) -> None:
    # A rebinding name: the first answer is loopback, every later one cloud metadata. A
    # fetcher that resolved again to connect (or let the system do it) would go elsewhere.
    dns = _Dns({"crl.rebind.example": [["127.0.0.1"], ["169.254.169.254"]]})
    fetcher = HttpFetcher(allow=FetchAllowList(("crl.rebind.example",)), resolve=dns)
    assert fetcher.fetch(f"http://crl.rebind.example:{repos.port4}/ca.crl") == CRL
    assert dns.asked == ["crl.rebind.example"]
    # A fresh connection resolves afresh, and is refused.
    fresh = HttpFetcher(allow=FetchAllowList(("crl.rebind.example",)), resolve=dns)
    with pytest.raises(FetchError, match="link-local"):
        fresh.fetch(f"http://crl.rebind.example:{repos.port4}/ca.crl")
    assert len(repos.seen) == 1


def test_without_a_list_loopback_names_are_fetched_as_before(repos: _Repositories) -> None:
    fetcher = _fetcher(None, {"crl.plant.example": ["127.0.0.1"]})
    assert fetcher.fetch(f"http://crl.plant.example:{repos.port4}/ca.crl") == CRL


def test_an_empty_list_allows_nothing(repos: _Repositories) -> None:
    fetcher = _fetcher([], {"localhost": ["127.0.0.1"]})
    for url in (f"http://127.0.0.1:{repos.port4}/ca.crl", f"http://localhost:{repos.port4}/"):
        with pytest.raises(FetchError, match="not on this node's fetch allow-list"):
            fetcher.fetch(url)
    assert repos.seen == []


def test_a_name_that_does_not_resolve_fails_closed() -> None:
    fetcher = _fetcher(["127.0.0.0/8"])
    with pytest.raises(FetchError, match=r"cannot fetch http://crl\.gone\.example/.*resolve"):
        fetcher.fetch("http://crl.gone.example/ca.crl")


def _tls_repository(tmp: Path, name: str) -> tuple[ThreadingHTTPServer, Path]:
    """A loopback HTTPS repository whose self-signed certificate names ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "tls.pem", tmp / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Repository)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, cert_file


def test_tls_verifies_the_urls_name_though_the_address_is_connected_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert_file = _tls_repository(tmp_path, "crl.rheintal-trust.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the repository's certificate
    port = server.server_address[1]
    dns = {"crl.rheintal-trust.example": ["127.0.0.1"], "crl.other.example": ["127.0.0.1"]}
    try:
        fetcher = _fetcher(["*.rheintal-trust.example", "crl.other.example"], dns)
        assert fetcher.fetch(f"https://crl.rheintal-trust.example:{port}/ca.crl") == CRL
        # Same address, another name: the certificate does not name it.
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetcher.fetch(f"https://crl.other.example:{port}/ca.crl")
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed(repos: _Repositories) -> None:
    fetcher = _fetcher(["127.0.0.0/8"])
    with pytest.raises(FetchError, match="answered HTTP 302"):
        fetcher.fetch(f"http://127.0.0.1:{repos.port4}/moved")
    assert repos.seen == [("/moved", f"127.0.0.1:{repos.port4}")]


def test_entries_are_kept_in_canonical_form() -> None:
    allow = FetchAllowList(
        (" Crl.Rheintal-Trust.Example ", "*.FUJI-CA.example", "10.20.0.0/16", "::1", "10.9.9.9")
    )
    assert allow.entries == (
        "crl.rheintal-trust.example",
        "*.fuji-ca.example",
        "10.20.0.0/16",
        "::1/128",
        "10.9.9.9/32",
    )
    assert allow == FetchAllowList(allow.entries)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("", "not a host name"),
        ("*", "not a host name"),
        ("*.", "not a host name"),
        ("crl.*.example", "not a host name"),
        ("https://crl.example/ca.crl", "not a host name"),
        ("crl.example:8080", "not a host name"),
        ("crl example", "not a host name"),
        ("10.20.0.1/16", "not a network: 10.20.0.1/16 has host bits set"),
        ("10.20.0.0/33", "not a network"),
        ("300.1.1.1", "not a network"),
        ("fe80::1::2", "not a network"),
        (7, "is not a string"),
    ],
)
def test_a_malformed_entry_is_refused_by_name(entry: object, said: str) -> None:
    with pytest.raises(InputError, match="fetch allow-list entry") as raised:
        FetchAllowList((entry,))  # type: ignore[arg-type]
    assert repr(entry) in raised.value.message and said in raised.value.message


def test_one_string_is_not_a_list() -> None:
    with pytest.raises(InputError, match="one string"):
        FetchAllowList("crl.example")  # type: ignore[arg-type]


# -- through a forward proxy ([fetch] proxy): Debian's tinyproxy, started here -------------------


@dataclass
class _Proxy:
    url: str
    log: Path

    def requests(self) -> list[str]:
        """The request lines the proxy logged (``GET http://...``, ``CONNECT host:port``)."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split("): ", 1)[1] for line in text.splitlines() if "Request (file" in line]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _tinyproxy(folder: Path, *settings: str) -> Iterator[_Proxy]:
    """Debian's tinyproxy on loopback with ``settings`` added to its configuration."""
    binary = shutil.which("tinyproxy")
    assert binary is not None, "tinyproxy is missing: scripts/setup.sh installs it"
    port, log = _free_port(), folder / "tinyproxy.log"
    config = folder / "tinyproxy.conf"
    config.write_text(
        f'Port {port}\nListen 127.0.0.1\nTimeout 10\nLogFile "{log}"\nLogLevel Info\n'
        "MaxClients 20\nAllow 127.0.0.1\n" + "".join(f"{line}\n" for line in settings)
    )
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start (see {log})") from None
                time.sleep(0.05)
        yield _Proxy(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Proxy]:
    """A real forward proxy on loopback (tinyproxy; ``make setup`` installs it)."""
    with _tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as started:
        yield started


@contextlib.contextmanager
def _refused_before(proxy: _Proxy, match: str) -> Iterator[None]:
    """The block's fetch fails with ``match`` and the proxy never sees a request."""
    before = proxy.requests()
    with pytest.raises(FetchError, match=match):
        yield
    assert proxy.requests() == before


def test_a_proxied_fetch_goes_through_the_proxy(proxy: _Proxy, repos: _Repositories) -> None:
    url = f"http://127.0.0.1:{repos.port4}/ca.crl"
    assert _fetcher(None, proxy=proxy).fetch(url) == CRL
    assert f"GET {url} HTTP/1.1" in proxy.requests()
    assert repos.seen == [("/ca.crl", f"127.0.0.1:{repos.port4}")]


def test_a_name_that_only_the_proxy_resolves_is_left_to_it(
    proxy: _Proxy, repos: _Repositories
) -> None:
    # No allow-list: the proxy resolves localhost (its /etc/hosts); this fetcher cannot.
    fetcher = _fetcher(None, proxy=proxy)
    url = f"http://localhost:{repos.port4}/ca.crl"
    assert fetcher.fetch(url) == CRL
    assert _asked(fetcher) == ["localhost"]
    assert f"GET {url} HTTP/1.1" in proxy.requests()


def test_https_is_tunnelled_and_verifies_the_urls_name(
    proxy: _Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert_file = _tls_repository(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the repository's certificate
    port = server.server_address[1]
    try:
        assert _fetcher(None, proxy=proxy).fetch(f"https://localhost:{port}/ca.crl") == CRL
        assert f"CONNECT localhost:{port} HTTP/1.1" in proxy.requests()
        # The tunnel ends at the repository: its certificate must name the URL's host.
        with pytest.raises(FetchError, match="certificate verify failed"):
            _fetcher(None, proxy=proxy).fetch(f"https://127.0.0.1:{port}/ca.crl")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("url", "dns", "said"),
    [
        ("http://169.254.169.254/latest/meta-data/", {}, "a link-local address"),
        # A name that resolves here to a refused address is refused, though the proxy would
        # resolve it.
        (
            "http://metadata.werk.example/latest/",
            {"metadata.werk.example": ["169.254.169.254"]},
            "metadata.werk.example is a link-local address",
        ),
        ("http://[fd00:ec2::254]/latest/", {}, "a cloud metadata service address"),
    ],
)
def test_the_refusals_apply_before_the_proxy_is_asked(
    proxy: _Proxy, url: str, dns: dict[str, list[str]], said: str
) -> None:
    with _refused_before(proxy, f"not fetching {re.escape(url)}: .*{said}"):
        _fetcher(None, dns, proxy=proxy).fetch(url)


def test_an_allow_list_applies_through_the_proxy(proxy: _Proxy, repos: _Repositories) -> None:
    allow = ["127.0.0.0/8", "crl.rheintal-trust.example"]
    # A name that does not resolve here: no network entry can be checked, so only a name
    # entry could allow it.
    with _refused_before(proxy, "its network cannot be checked: it does not resolve"):
        _fetcher(allow, proxy=proxy).fetch(f"http://localhost:{repos.port4}/ca.crl")
    with _refused_before(proxy, r"host 10\.1\.2\.3 is not on this node's fetch"):
        _fetcher(allow, proxy=proxy).fetch("http://10.1.2.3/ca.crl")
    with _refused_before(proxy, r"resolves to 10\.1\.2\.3, outside the allowed networks"):
        _fetcher(allow, {"localhost": ["10.1.2.3"]}, proxy=proxy).fetch("http://localhost/ca.crl")
    # A name resolving here inside an allowed network: the proxy would resolve it again.
    url = f"http://localhost:{repos.port4}/ca.crl"
    with _refused_before(proxy, "a network entry cannot allow a name fetched through"):
        _fetcher(allow, {"localhost": ["127.0.0.1"]}, proxy=proxy).fetch(url)
    # A literal inside an allowed network: through the proxy.
    assert _fetcher(allow, proxy=proxy).fetch(f"http://127.0.0.1:{repos.port4}/ca.crl") == CRL
    assert len(repos.seen) == 1


def test_with_the_proxy_down_nothing_is_fetched_directly(repos: _Repositories) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    fetcher = HttpFetcher(timeout=2.0, proxy=dead)
    url = f"http://127.0.0.1:{repos.port4}/ca.crl"
    with pytest.raises(FetchError, match=f"cannot fetch .* through the fetch proxy {dead}"):
        fetcher.fetch(url)
    assert repos.seen == []


def test_a_proxy_from_the_environment_is_never_used(
    repos: _Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert HttpFetcher(timeout=2.0).fetch(f"http://127.0.0.1:{repos.port4}/ca.crl") == CRL


# -- through a proxy, the host checked is the host sent ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        # A trailing dot: urlsplit/ipaddress see a name, getaddrinfo here does not resolve it
        # (NXDOMAIN), so with no allow-list it goes to the proxy. Squid's URL parser strips
        # trailing dots and connects to 169.254.169.254.
        "http://169.254.169.254./latest/meta-data/",
        "http://169.254.169.254.:80/latest/meta-data/",
        "http://2852039166./latest/meta-data/",
        "http://0xa9fea9fe./latest/meta-data/",
        "http://169.254.43518./latest/meta-data/",
        # Not a DNS name at all; a proxy that percent-decodes or trims hosts reads an address.
        "http://%31%36%39.254.169.254/latest/meta-data/",
        "http://169.254.169.254 /latest/meta-data/",
    ],
)
def test_a_disguised_literal_never_reaches_the_proxy(proxy: _Proxy, url: str) -> None:
    fetcher = HttpFetcher(timeout=5.0, proxy=proxy.url)  # the real resolver, no allow-list
    with _refused_before(proxy, "not fetching "):
        fetcher.fetch(url)


# The name checked is the name sent: httpx writes IDNA 2008 (xn--), getaddrinfo would look up
# the IDNA 2003 form (faß -> fass), another name.


def test_the_system_resolver_maps_unicode_names_with_idna_2003() -> None:
    # The premise of _Dns(idna2003=True): getaddrinfo is given the IDNA 2003 (nameprep) form.
    assert "faß".encode("idna") == b"fass"
    assert system_resolve("ｌｏｃａｌｈｏｓｔ", 80)[0] in ("127.0.0.1", "::1")  # noqa: RUF001


def test_the_name_sent_to_the_proxy_is_the_name_checked(proxy: _Proxy) -> None:
    # fass.attacker.example resolves into the allowed network; httpx sends the proxy
    # xn--fa-hia.attacker.example, a different name whose DNS the attacker also controls.
    dns = {"fass.attacker.example": ["10.20.0.5"]}
    fetcher = _fetcher(["10.0.0.0/8"], dns, proxy=proxy, idna2003=True)
    with _refused_before(proxy, "not fetching"):
        fetcher.fetch("http://faß.attacker.example/ca.crl")


def test_the_refusals_see_the_name_sent_to_the_proxy(proxy: _Proxy) -> None:
    dns = {
        "fass.attacker.example": ["93.184.216.34"],
        "xn--fa-hia.attacker.example": ["169.254.169.254"],
    }
    fetcher = _fetcher(None, dns, proxy=proxy, idna2003=True)
    with _refused_before(proxy, "link-local"):
        fetcher.fetch("http://faß.attacker.example/latest/meta-data/")


# Through a proxy a network entry allows IP literals only: the proxy resolves a name again.


def test_a_name_allowed_by_network_is_not_re_resolved_elsewhere(
    proxy: _Proxy, repos: _Repositories
) -> None:
    # Here localhost answers 10.1.2.3 (inside the allowed network); the proxy resolves it
    # again and gets 127.0.0.1 (outside it): DNS rebinding or split horizon.
    fetcher = _fetcher(["10.0.0.0/8"], {"localhost": ["10.1.2.3"]}, proxy=proxy)
    with pytest.raises(FetchError, match="a network entry cannot allow a name fetched through"):
        fetcher.fetch(f"http://localhost:{repos.port4}/ca.crl")
    assert repos.seen == []  # the proxy would have fetched from 127.0.0.1, off the list


# IPv6 literals are not sent through the proxy: httpcore writes them without brackets.


def test_an_ipv6_literal_is_not_sent_through_the_proxy(proxy: _Proxy, repos: _Repositories) -> None:
    # httpcore would send "GET http://::1:PORT/ca.crl" (RFC 9112 wants [::1]); a proxy may
    # read the port as the address's last group.
    with _refused_before(proxy, r"an IPv6 address \(::1\) is not sent through"):
        _fetcher(["::1/128"], proxy=proxy).fetch(f"http://[::1]:{repos.port6}/ca.crl")


@pytest.mark.parametrize(
    "value",
    [
        "https://werk:s3cret@proxy.example:3128",
        "socks5://werk:s3cret@proxy.example:1080",
        "http://werk:s3cret@proxy.example:31x8",
        "http://werk:s3cret@[proxy.example:3128",
    ],
)
def test_no_config_error_shows_the_proxy_password(tmp_path: Path, value: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(f'[node]\nname = "n"\n[fetch]\nproxy = "{value}"\n')
    with pytest.raises(ConfigError) as raised:
        HomeConfig.load(tmp_path)
    shown = f"{raised.value.message} {raised.value.hint or ''}"
    assert "s3cret" not in shown, shown


def test_port_zero_is_not_silently_port_80() -> None:
    with pytest.raises(InputError, match="names port 0"):
        fetch_proxy_url("http://proxy.example:0")


# -- a proxy that asks for credentials (HTTP Basic, [fetch] proxy_user) ------------------------

_PROXY_USER, _PROXY_PASSWORD = "werk-pki", b"Kupfer-7.Draht"  # what tinyproxy parses


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Proxy]:
    """tinyproxy that lets through only requests with the user's Basic credentials."""
    folder = tmp_path_factory.mktemp("tinyproxy-auth")
    with _tinyproxy(folder, f"BasicAuth {_PROXY_USER} {_PROXY_PASSWORD.decode()}") as started:
        yield started


def _auth_fetcher(proxy: _Proxy, password: bytes | None = _PROXY_PASSWORD) -> HttpFetcher:
    auth = None if password is None else (_PROXY_USER, password)
    return HttpFetcher(timeout=5.0, resolve=_Dns({}), proxy=proxy.url, proxy_auth=auth)


@contextlib.contextmanager
def _https_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """A loopback HTTPS repository for ``localhost`` that this test trusts: its URL, server."""
    server, cert_file = _tls_repository(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    try:
        yield f"https://localhost:{server.server_address[1]}/ca.crl", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def https_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    with _https_repository(tmp_path, monkeypatch) as repository:
        yield repository


def test_credentials_open_the_proxy_and_never_reach_the_repository(
    auth_proxy: _Proxy, repos: _Repositories
) -> None:
    url = f"http://127.0.0.1:{repos.port4}/ca.crl"
    assert _auth_fetcher(auth_proxy).fetch(url) == CRL
    assert f"GET {url} HTTP/1.1" in auth_proxy.requests()
    assert repos.seen == [("/ca.crl", f"127.0.0.1:{repos.port4}")]
    assert _Repository.proxy_credentials == []  # the proxy took them; the partner never saw them


def test_credentials_open_a_tunnel(
    auth_proxy: _Proxy, https_repository: tuple[str, ThreadingHTTPServer]
) -> None:
    url, server = https_repository
    assert _auth_fetcher(auth_proxy).fetch(url) == CRL
    assert f"CONNECT localhost:{server.server_address[1]} HTTP/1.1" in auth_proxy.requests()
    assert _Repository.proxy_credentials == []


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("password", "hint"),
    [
        (None, "the proxy asks for credentials: set [fetch] proxy_user"),
        (b"Kupfer-7.Drah", f"the proxy did not accept user '{_PROXY_USER}'"),
    ],
)
def test_a_proxy_that_refuses_says_what_to_do(
    auth_proxy: _Proxy,
    repos: _Repositories,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    password: bytes | None,
    hint: str,
) -> None:
    with contextlib.ExitStack() as stack:
        if scheme == "https":
            url, _ = stack.enter_context(_https_repository(tmp_path, monkeypatch))
        else:
            url = f"http://127.0.0.1:{repos.port4}/ca.crl"
        with pytest.raises(FetchError) as raised:
            _auth_fetcher(auth_proxy, password).fetch(url)
    message, said_hint = raised.value.message, raised.value.hint or ""
    if scheme == "http" and password is not None:
        # tinyproxy answers wrong credentials with 401 (not 407): over plain HTTP that
        # cannot be told from the repository's own 401.
        assert message == f"{url} answered HTTP 401 through the fetch proxy {auth_proxy.url}"
        assert f"a proxy that did not accept user '{_PROXY_USER}' may answer so" in said_hint
    else:
        assert message.startswith(f"the fetch proxy {auth_proxy.url} refused {url}: 40")
        assert hint in said_hint
    assert "Kupfer" not in message + said_hint and "Drah" not in message + said_hint
    assert repos.seen == []


@pytest.mark.parametrize(
    ("user", "password", "said"),
    [
        ("werk:pki", b"pw", "has a colon or a control character"),
        ("werk\npki", b"pw", "has a colon or a control character"),
        ("", b"pw", "is not a non-empty string"),
        ("werk-pki", b"", "is empty"),
        # A password file written with CRLF line ends: the CR is left after the newline is cut.
        ("werk-pki", b"Kupfer\r", "has a control character"),
        ("werk-pki", b"Kupfer" * 200, "is over 1024 bytes"),
    ],
)
def test_malformed_proxy_credentials_are_refused(user: str, password: bytes, said: str) -> None:
    with pytest.raises(InputError, match=re.escape(said)) as raised:
        HttpFetcher(proxy="http://proxy.example:3128", proxy_auth=(user, password))
    assert "Kupfer" not in f"{raised.value.message} {raised.value.hint}"


def test_credentials_need_a_proxy_and_stay_out_of_the_fetchers_repr() -> None:
    with pytest.raises(InputError, match="no fetch proxy"):
        HttpFetcher(proxy_auth=(_PROXY_USER, _PROXY_PASSWORD))
    fetcher = HttpFetcher(proxy="http://proxy.example:3128", proxy_auth=(_PROXY_USER, b"Kupfer"))
    assert "Kupfer" not in repr(fetcher)


def test_a_repositorys_own_407_is_not_blamed_on_the_proxy(
    auth_proxy: _Proxy, https_repository: tuple[str, ThreadingHTTPServer]
) -> None:
    # Inside the tunnel only the repository answers: its 407 is its own.
    url = https_repository[0].replace("/ca.crl", "/ask")
    with pytest.raises(FetchError) as raised:
        _auth_fetcher(auth_proxy).fetch(url)
    assert raised.value.message == f"{url} answered HTTP 407"
    assert raised.value.hint is None
