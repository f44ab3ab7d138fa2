"""Path building across bridges and cross-certificates (RFC 4158), bounded and loop-free.

The builder works backwards from the end entity: the issuers of a certificate are the
certificates whose subject is its issuer name, found in an unordered pool and, through a
pluggable :class:`Fetcher`, in the ``.p7c`` bundles its AIA caIssuers URLs name. It searches
breadth-first, so shorter paths come first; among the issuers of one certificate it prefers
those whose key identifier matches, that are valid at the validation time, and that assert a
policy the certificate below needs. A path never holds the same (name, key) twice, which makes
the search loop-free even in a mesh of cross-certificates and key-rollover certificates.

Every search is bounded (:class:`SearchLimits`): paths validated, certificates examined,
fetches made, path length. Reaching a bound ends the search with an error that names it.
Each candidate path is validated per RFC 5280 (:func:`trustbridge.trust.validation.validate_chain`)
with revocation information gathered through the same fetcher from the CRL distribution points
of the path's certificates.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx
import idna
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtensionOID,
    SubjectInformationAccessOID,
)

from trustbridge.errors import InputError, TrustbridgeError, ValidationError
from trustbridge.trust.validation import (
    RevocationMode,
    ValidatedPath,
    ValidationParams,
    validate_chain,
)

__all__ = [
    "CertificatePool",
    "FetchAllowList",
    "FetchError",
    "Fetcher",
    "FoundPath",
    "HttpFetcher",
    "MirrorFetcher",
    "PathBuilder",
    "PathSearchError",
    "SearchLimits",
    "fetch_proxy_url",
    "fetch_proxy_user",
    "read_certificates",
    "refused_address",
    "system_resolve",
]

ANY_POLICY = x509.ObjectIdentifier("2.5.29.32.0")
_SHA256 = hashes.SHA256()
_NO_REVOCATION = RevocationMode.UNSAFE_SOFT_FAIL


class FetchError(TrustbridgeError):
    """A URL that could not be fetched (unreachable, too large, not allowed)."""


class Fetcher(Protocol):
    """Fetches the object at a URL (``.p7c`` bundle, certificate, CRL)."""

    def fetch(self, url: str) -> bytes: ...


@dataclass(frozen=True)
class SearchLimits:
    """Bounds of one path search; reaching one ends the search with :class:`PathSearchError`."""

    #: Candidate paths validated.
    max_paths: int = 32
    #: Certificates examined as possible issuers.
    max_certificates: int = 2000
    #: URLs fetched (``.p7c`` bundles and CRLs).
    max_fetches: int = 100
    #: Seconds spent waiting for fetches, all together: a certificate whose URLs all time out
    #: costs at most this, not ``max_fetches`` times the fetcher's timeout.
    max_fetch_seconds: float = 30.0
    #: Certificates in a path, trust anchor included.
    max_length: int = 10


class PathSearchError(ValidationError):
    """No valid path: none exists in what was found, or a search bound was reached."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        limit: str | None = None,
        failures: Sequence[tuple[tuple[x509.Certificate, ...], ValidationError]] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit
        self.failures = tuple(failures)


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates in a DER or PEM certificate, a PEM bundle, or a ``.p7c`` (DER or PEM)."""
    if b"-----BEGIN PKCS7-----" in data:
        return list(pkcs7.load_pem_pkcs7_certificates(data))
    if b"-----BEGIN CERTIFICATE-----" in data:
        return list(x509.load_pem_x509_certificates(data))
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return list(pkcs7.load_der_pkcs7_certificates(data))
    except ValueError:
        return []


@functools.lru_cache(maxsize=8192)
def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(_SHA256)


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=8192)
def _normalized(name_der: bytes) -> object:
    """A name compared as RFC 5280 7.1 says (case and whitespace folded), for indexing."""
    return asn1_x509.Name.load(name_der).hashable


def _name_key(name: x509.Name) -> object:
    return _normalized(name.public_bytes())


def _identity(certificate: x509.Certificate) -> tuple[object, bytes]:
    """(name, key): a path may pass through a CA once, whatever certificate names it."""
    return _name_key(certificate.subject), hashlib.sha256(_spki(certificate)).digest()


def _extension(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> object | None:
    try:
        return certificate.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _urls(descriptions: object, method: x509.ObjectIdentifier) -> list[str]:
    if not isinstance(descriptions, x509.AuthorityInformationAccess):
        return []
    return [
        d.access_location.value
        for d in descriptions
        if d.access_method == method
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _crl_urls(certificate: x509.Certificate) -> list[str]:
    urls: list[str] = []
    for oid in (ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.FRESHEST_CRL):
        points = _extension(certificate, oid)
        if not isinstance(points, x509.CRLDistributionPoints | x509.FreshestCRL):
            continue
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier):
                    urls.append(name.value)
    return urls


def _freshest_urls(crl_der: bytes) -> list[str]:
    try:
        crl = x509.load_der_x509_crl(crl_der)
        points = crl.extensions.get_extension_for_class(x509.FreshestCRL).value
    except (ValueError, x509.ExtensionNotFound):
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _is_ca(certificate: x509.Certificate) -> bool:
    constraints = _extension(certificate, ExtensionOID.BASIC_CONSTRAINTS)
    # Version 1 certificates (no extensions) are CAs only as trust anchors; PKITS has none
    # in intermediate positions that must pass.
    return isinstance(constraints, x509.BasicConstraints) and constraints.ca


def _key_ids(certificate: x509.Certificate) -> tuple[bytes | None, bytes | None]:
    """(subject key identifier, authority key identifier) where present."""
    ski = _extension(certificate, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki = _extension(certificate, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    return (
        ski.digest if isinstance(ski, x509.SubjectKeyIdentifier) else None,
        aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None,
    )


def _self_signed_hint(certificate: x509.Certificate) -> bool:
    """Self-issued, and its key identifiers name no other key (not a rollover link)."""
    ski, aki = _key_ids(certificate)
    return aki is None or ski is None or ski == aki


def _policies(certificate: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    value = _extension(certificate, ExtensionOID.CERTIFICATE_POLICIES)
    if not isinstance(value, x509.CertificatePolicies):
        return frozenset()
    return frozenset(p.policy_identifier for p in value)


class CertificatePool:
    """An unordered set of certificates, indexed by subject name; duplicates are ignored."""

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        self._by_subject: dict[object, list[x509.Certificate]] = collections.defaultdict(list)
        self._seen: set[bytes] = set()
        for certificate in certificates:
            self.add(certificate)

    def add(self, certificate: x509.Certificate) -> bool:
        der = certificate.public_bytes(Encoding.DER)
        if der in self._seen:
            return False
        self._seen.add(der)
        self._by_subject[_name_key(certificate.subject)].append(certificate)
        return True

    def extend(self, certificates: Iterable[x509.Certificate]) -> int:
        return sum(self.add(c) for c in certificates)

    def issuers_named(self, name: x509.Name) -> list[x509.Certificate]:
        return list(self._by_subject.get(_name_key(name), ()))

    def all(self) -> list[x509.Certificate]:
        return [c for group in self._by_subject.values() for c in group]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class FoundPath:
    """A validated path and the CRLs (DER) it was validated with."""

    path: ValidatedPath
    crls: tuple[bytes, ...]


@dataclass
class _Search:
    """The counters of one search, checked against the limits."""

    limits: SearchLimits
    certificates: int = 0
    fetches: int = 0
    fetch_seconds: float = 0.0
    paths: int = 0
    limit_hit: str | None = None


@dataclass
class PathBuilder:
    """Finds and validates paths from a certificate to one of ``anchors``.

    One builder may serve many searches: fetched bundles and signature checks are kept (a
    relying party's warm cache); counters and limits apply per search.
    """

    anchors: Sequence[x509.Certificate]
    pool: CertificatePool = field(default_factory=CertificatePool)
    fetcher: Fetcher | None = None
    limits: SearchLimits = field(default_factory=SearchLimits)
    #: Validates one candidate path (anchor first); ``other_certificates`` may sign
    #: revocation information (a CA's CRL signed with its rolled-over key, say).
    validate: Callable[..., ValidatedPath] = validate_chain
    #: The monotonic clock the fetch time budget is measured with.
    clock: Callable[[], float] = time.monotonic
    #: Fetched URLs (and failures) kept, oldest dropped first: the URLs of certificates that
    #: strangers present must not grow the cache without bound.
    max_cached_fetches: int = 4096
    _fetched: dict[str, bytes | FetchError] = field(default_factory=dict, repr=False)
    _signed_by: dict[tuple[bytes, bytes], bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._anchors_by_subject: dict[object, list[x509.Certificate]] = collections.defaultdict(
            list
        )
        for anchor in self.anchors:
            self._anchors_by_subject[_name_key(anchor.subject)].append(anchor)

    # -- fetching --------------------------------------------------------------------------

    def _fetch(self, url: str, search: _Search) -> bytes | None:
        cached = self._fetched.get(url)
        if cached is None:
            if self.fetcher is None:
                return None
            if search.fetches >= search.limits.max_fetches:
                search.limit_hit = search.limit_hit or f"max_fetches={search.limits.max_fetches}"
                return None
            if search.fetch_seconds >= search.limits.max_fetch_seconds:
                search.limit_hit = search.limit_hit or (
                    f"max_fetch_seconds={search.limits.max_fetch_seconds:g}"
                )
                return None
            search.fetches += 1
            started = self.clock()
            try:
                cached = self.fetcher.fetch(url)
            except FetchError as exc:
                cached = exc
            finally:
                search.fetch_seconds += max(0.0, self.clock() - started)
            self._fetched[url] = cached
            while len(self._fetched) > self.max_cached_fetches:
                del self._fetched[next(iter(self._fetched))]
        return None if isinstance(cached, FetchError) else cached

    def _discover_issuers(self, certificate: x509.Certificate, search: _Search) -> None:
        aia = _extension(certificate, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        for url in _urls(aia, AuthorityInformationAccessOID.CA_ISSUERS):
            data = self._fetch(url, search)
            if data:
                self.pool.extend(read_certificates(data))

    # -- issuers ---------------------------------------------------------------------------

    def _signed(self, subject: x509.Certificate, issuer: x509.Certificate) -> bool:
        key = (_fingerprint(subject), _fingerprint(issuer))
        known = self._signed_by.get(key)
        if known is None:
            try:
                subject.verify_directly_issued_by(issuer)
                known = True
            except (InvalidSignature, ValueError, TypeError):
                known = False
            except UnsupportedAlgorithm:
                # DSA and other algorithms cryptography does not verify here: leave the
                # decision to full path validation.
                known = True
            self._signed_by[key] = known
        return known

    def _issuers(
        self, certificate: x509.Certificate, search: _Search, at_order: Callable[..., int]
    ) -> list[x509.Certificate]:
        if self.fetcher is not None:
            # Always: the AIA bundle may hold other issuers (cross-certificates) than the pool.
            self._discover_issuers(certificate, search)
        found = self.pool.issuers_named(certificate.issuer)
        _, aki = _key_ids(certificate)
        wanted = _policies(certificate)

        def preference(candidate: x509.Certificate) -> tuple[int, int, int, int]:
            ski, _ = _key_ids(candidate)
            key_match = 0 if aki is None or ski is None or ski == aki else 1
            offered = _policies(candidate)
            policy_fit = 0 if not wanted or ANY_POLICY in offered or offered & wanted else 1
            # RFC 4158 3.5: a certificate a trust anchor issued ends the path at once. In a
            # mesh, a root's bundle holds the cross-certificates of every other root: the one
            # from our anchor goes first (a bundle's order says nothing: DER sorts a SET OF).
            anchored = 0 if _name_key(candidate.issuer) in self._anchors_by_subject else 1
            return key_match, at_order(candidate), anchored, policy_fit

        return sorted(found, key=preference)

    # -- search ----------------------------------------------------------------------------

    def candidates(
        self, leaf: x509.Certificate, *, params: ValidationParams, search: _Search | None = None
    ) -> Iterator[tuple[x509.Certificate, ...]]:
        """Candidate paths, trust anchor first, shortest first; each at most once."""
        search = search or _Search(self.limits)
        limits = search.limits
        at = params.at

        def at_order(candidate: x509.Certificate) -> int:
            return 0 if candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc else 1

        queue: collections.deque[tuple[x509.Certificate, ...]] = collections.deque([(leaf,)])
        emitted: set[tuple[bytes, ...]] = set()
        while queue:
            partial = queue.popleft()
            last = partial[-1]
            # Complete the path where an anchor issued the last certificate.
            named = self._anchors_by_subject.get(_name_key(last.issuer), ())
            for anchor in named:
                if _identity(anchor) in {_identity(c) for c in partial}:
                    continue
                if len(named) > 1 and not self._signed(last, anchor):
                    continue
                path = (anchor, *reversed(partial))
                key = tuple(_fingerprint(c) for c in path)
                if key not in emitted:
                    emitted.add(key)
                    yield path
            if len(partial) + 1 >= limits.max_length:
                continue
            seen = {_identity(c) for c in partial}
            issuers = self._issuers(last, search, at_order)
            for issuer in issuers:
                search.certificates += 1
                if search.certificates > limits.max_certificates:
                    search.limit_hit = f"max_certificates={limits.max_certificates}"
                    return
                if _identity(issuer) in seen or not _is_ca(issuer):
                    continue
                if issuer.subject == issuer.issuer and _spki(issuer) == _spki(last):
                    continue
                if len(issuers) > 1 and not self._signed(last, issuer):
                    continue
                queue.append((*partial, issuer))

    def chain_up(self, certificate: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """``certificate`` and its issuers up to a self-signed one, through pool and AIA.

        At each step the first issuer whose signature verifies is taken (no search): enough to
        find the root above a CA that a trust list names. Stops at the length limit, at a loop
        or where no issuer is found; the last element is then not self-signed.
        """
        search = _Search(self.limits)
        chain = [certificate]
        seen = {_identity(certificate)}
        while len(chain) < self.limits.max_length:
            last = chain[-1]
            if last.subject == last.issuer and _self_signed_hint(last):
                break
            issuer = next(
                (
                    c
                    for c in self._issuers(last, search, lambda _c: 0)
                    if _identity(c) not in seen and self._signed(last, c)
                ),
                None,
            )
            if issuer is None:
                break
            chain.append(issuer)
            seen.add(_identity(issuer))
        return tuple(chain)

    def revocation_info(
        self,
        path: Sequence[x509.Certificate],
        search: _Search,
        others: Sequence[x509.Certificate] = (),
    ) -> list[bytes]:
        """CRLs (full and delta) the path's certificates name, and those of ``others`` (the
        certificates that may sign the path's CRLs need theirs), fetched through the fetcher."""
        crls: list[bytes] = []
        urls = dict.fromkeys(url for c in [*path[1:], *others] for url in _crl_urls(c))
        pending = list(urls)
        seen = set(pending)
        while pending:
            data = self._fetch(pending.pop(0), search)
            if not data:
                continue
            crls.append(data)
            # A full CRL names its delta CRLs (FreshestCRL); a validator needs them too.
            for url in _freshest_urls(data):
                if url not in seen:
                    seen.add(url)
                    pending.append(url)
        return crls

    def _namesakes(self, path: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        """Certificates of the path's CAs outside the path with another key: they may sign its
        CRLs (a CA's CRL signed with its rolled-over key). A certificate for the same name and
        key as one in the path adds nothing (the path's own certifies that key), so the
        cross-certificates a bridge holds from every other root are left out, and so are
        their CRLs."""
        inside = {_identity(c) for c in path}
        names = {c.subject for c in path[:-1]}
        found = [c for name in names for c in self.pool.issuers_named(name)]
        return [c for c in dict.fromkeys(found) if _identity(c) not in inside]

    def _discover_issued(self, search: _Search) -> int:
        """Forward discovery: fetch the SIA bundles of every CA known so far (once each)."""
        added = 0
        for certificate in [*self.anchors, *self.pool.all()]:
            sia = _extension(certificate, ExtensionOID.SUBJECT_INFORMATION_ACCESS)
            if not isinstance(sia, x509.SubjectInformationAccess):
                continue
            for description in sia:
                location = description.access_location
                if description.access_method != SubjectInformationAccessOID.CA_REPOSITORY:
                    continue
                if not isinstance(location, x509.UniformResourceIdentifier):
                    continue
                if location.value in self._fetched:
                    continue
                data = self._fetch(location.value, search)
                if data:
                    added += self.pool.extend(read_certificates(data))
        return added

    def build(self, leaf: x509.Certificate, params: ValidationParams) -> ValidatedPath:
        """The first candidate path that validates; raise :class:`PathSearchError` otherwise."""
        return self.find(leaf, params).path

    def find(self, leaf: x509.Certificate, params: ValidationParams) -> FoundPath:
        """:meth:`build`, also returning the revocation information the path validated with.

        Backward search first (pool and AIA); where that finds no valid path and a fetcher is
        at hand, the SIA bundles of the CAs found so far are fetched (forward discovery) and the
        search runs again over what they added.
        """
        search = _Search(self.limits)
        failures: list[tuple[tuple[x509.Certificate, ...], ValidationError]] = []
        tried: set[tuple[bytes, ...]] = set()
        while True:
            for path in self.candidates(leaf, params=params, search=search):
                key = tuple(_fingerprint(c) for c in path)
                if key in tried:
                    continue
                tried.add(key)
                if search.paths >= self.limits.max_paths:
                    search.limit_hit = f"max_paths={self.limits.max_paths}"
                    break
                search.paths += 1
                others = self._namesakes(path)
                wanted = self.fetcher is not None and params.revocation is not _NO_REVOCATION
                crls = self.revocation_info(path, search, others) if wanted else []
                attempt = replace(params, crls=(*params.crls, *crls)) if crls else params
                try:
                    validated = self.validate(path, attempt, other_certificates=others)
                    return FoundPath(validated, attempt.crls)
                except ValidationError as exc:
                    failures.append((path, exc))
            if search.limit_hit or self.fetcher is None or not self._discover_issued(search):
                break
            # New certificates may sign revocation information the paths tried so far lacked:
            # they are tried again (the path limit still counts them).
            tried.clear()
        subject = leaf.subject.rfc4514_string()
        counts = (
            f"{search.paths} path(s) validated, {search.certificates} certificate(s) examined, "
            f"{search.fetches} fetch(es)"
        )
        if failures:
            path, first = failures[0]
            message = f"no valid path for {subject}: {first.message} ({counts})"
        else:
            message = f"no path from {subject} to a trust anchor ({counts})"
        if search.limit_hit:
            message += f"; the search stopped at {search.limit_hit}"
        raise PathSearchError(
            message,
            hint="add the missing CA or cross-certificates (--untrusted), or check the anchors",
            limit=search.limit_hit,
            failures=failures,
        )


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves a host name for a TCP port into IP addresses (as text), in the order to try them.
Resolver = Callable[[str, int], Sequence[str]]

_REFUSED_KINDS = (
    ("link_local", "a link-local"),
    ("multicast", "a multicast"),
    ("unspecified", "an unspecified"),
    ("reserved", "a reserved"),
)
#: Cloud metadata and platform services outside the link-local range, refused like it: AWS's
#: IPv6 instance metadata, Alibaba Cloud's metadata (in the shared 100.64.0.0/10 range) and
#: Azure's WireServer. No PKI repository lives there.
_METADATA_SERVICES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# One DNS label: letters, digits, hyphens inside, underscores (seen in service names).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label that URL parsers (WHATWG) and inet_aton read as a number: no DNS name ends so.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Looks like an IPv4 address (digits and dots) or an IPv6 one (a colon): never a host name.
_LOOKS_NUMERIC = re.compile(r"[0-9.]+|[0-9a-fA-F.]*:[0-9a-fA-F:.]*")


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection to ``port`` (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> _Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refusal(host: str, found: _Address) -> str | None:
    """Why no PKI repository lives at ``found`` (an address of ``host``), or None. An IPv6
    address that carries an IPv4 one (mapped, 6to4, Teredo) is judged by both."""
    candidates: list[_Address] = [found]
    if isinstance(found, ipaddress.IPv6Address):
        embedded = found.ipv4_mapped or found.sixtofour or (found.teredo or (None, None))[1]
        if embedded is not None:
            candidates = [embedded] if found.ipv4_mapped else [found, embedded]
    for address in candidates:
        if address in _METADATA_SERVICES:
            return f"{host} is a cloud metadata service address ({address})"
        if address.is_loopback:
            continue
        for kind, said in _REFUSED_KINDS:
            if getattr(address, f"is_{kind}"):
                return f"{host} is {said} address ({address})"
    return None


def refused_address(host: str, port: int) -> str | None:
    """Why ``host`` must not be fetched from, or None: the URLs come from certificates that
    anyone may present, so addresses no PKI repository lives at are refused (link-local, where
    cloud metadata services answer; multicast; unspecified; reserved). Loopback and private
    networks stay allowed: nodes in a plant network serve their CRLs there."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a) for a in system_resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            return None  # the fetch itself reports the name that does not resolve
    for found in sorted(addresses, key=str):
        refused = _refusal(host, found)
        if refused is not None:
            return refused
    return None


def _host_name(name: str) -> str:
    """``name`` as the fetcher compares it: lowercase IDNA ASCII form, no trailing dot."""
    name = name.lower().rstrip(".")
    if not name.isascii():
        name = idna.encode(name).decode("ascii")
    return name


@dataclass(frozen=True)
class FetchAllowList:
    """The hosts and networks a node fetches from (``[fetch] allow`` in a home's config).

    An entry is a host name (``crl.rheintal-trust.example``: that host only, compared
    case-insensitively in IDNA form), a wildcard (``*.fuji-ca.example``: its subdomains at any
    depth, not ``fuji-ca.example`` itself), or a network in CIDR form, IPv4 or IPv6
    (``10.20.0.0/16``; a bare address is a network of one). A URL's host is allowed

    - by name, where a name or wildcard entry matches it; it is then fetched from whatever it
      resolves to (the operator trusts that name's DNS), still never from an address
      :func:`refused_address` refuses;
    - by address otherwise (an IP literal, or a name no name entry matches), where every
      address it resolves to lies in a network entry.

    The addresses checked are the ones connected to (resolved once, at connection time), so a
    name that resolves elsewhere the second time (DNS rebinding) gains nothing. An empty list
    allows nothing; a malformed entry raises :class:`~trustbridge.errors.InputError`.
    """

    entries: tuple[str, ...]
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _domains: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[_Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.entries, str):
            raise InputError(
                f"the fetch allow-list is one string ({self.entries!r}), not a list of entries"
            )
        names: list[str] = []
        domains: list[str] = []
        networks: list[_Network] = []
        for entry in self.entries:
            parsed = _allow_entry(entry)
            if isinstance(parsed, str):
                (domains if parsed.startswith("*.") else names).append(parsed)
            else:
                networks.append(parsed)
        canonical = [*names, *domains, *(str(n) for n in networks)]
        object.__setattr__(self, "entries", tuple(dict.fromkeys(canonical)))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_domains", tuple(dict.fromkeys(d[1:] for d in domains)))
        object.__setattr__(self, "_networks", tuple(dict.fromkeys(networks)))

    @property
    def networks(self) -> tuple[_Network, ...]:
        return self._networks

    def allows_name(self, host: str) -> bool:
        """Whether a name or wildcard entry matches ``host`` (never an IP literal)."""
        if _literal(host) is not None:
            return False
        try:
            name = _host_name(host)
        except idna.IDNAError:
            return False
        # Only a DNS name can match a name entry: a host with other characters (a backslash
        # that a resolver reads as an escaped dot, say) goes to the network check.
        if not all(_LABEL.fullmatch(label) for label in name.split(".")):
            return False
        return name in self._names or any(name.endswith(d) for d in self._domains)

    def allows_address(self, address: _Address) -> bool:
        """Whether ``address`` lies in a network entry (an IPv4-mapped IPv6 address counts
        as its IPv4 address too)."""
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        candidates = [a for a in (address, mapped) if a is not None]
        return any(a.version == n.version and a in n for a in candidates for n in self._networks)


def _allow_entry(entry: object) -> str | _Network:
    """One allow-list entry: a canonical name or ``*.domain``, or a network."""
    if not isinstance(entry, str):
        raise InputError(f"fetch allow-list entry {entry!r} is not a string")
    text = entry.strip()
    if _LOOKS_NUMERIC.fullmatch(text.split("/", 1)[0]):
        try:
            return ipaddress.ip_network(text)
        except ValueError as exc:
            raise InputError(
                f"fetch allow-list entry {entry!r} is not a network: {exc}",
                hint="write a network as 10.20.0.0/16 or 2001:db8::/48, an address as 10.20.0.5",
            ) from None
    wildcard = text.startswith("*.")
    try:
        name = _host_name(text[2:] if wildcard else text)
    except idna.IDNAError as exc:
        raise InputError(f"fetch allow-list entry {entry!r} is not a host name: {exc}") from None
    labels = name.split(".")
    if not name or not all(_LABEL.fullmatch(label) for label in labels):
        raise InputError(
            f"fetch allow-list entry {entry!r} is not a host name, *.domain or network",
            hint="write crl.example.jp, *.example.jp or 10.20.0.0/16 (no scheme, port or path)",
        )
    return f"*.{name}" if wildcard else name


def fetch_proxy_url(text: object) -> str:
    """A forward proxy's URL as ``[fetch] proxy`` gives it, checked and in canonical form:
    ``http://host:port`` (the port defaults to 80), no credentials, path or query."""
    if not isinstance(text, str):
        raise InputError(f"fetch proxy {text!r} is not a URL string")
    hint = "write the proxy as http://proxy.example.com:3128 (no credentials, path or query)"
    shown = _redacted_proxy(text)
    try:
        parts = urlsplit(text.strip())
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InputError(f"fetch proxy {shown} is not a valid URL: {exc}", hint=hint) from None
    if parts.scheme != "http":
        raise InputError(
            f"fetch proxy {shown} is not an http:// proxy URL (HTTPS is tunnelled through it "
            "with CONNECT; a TLS or SOCKS connection to the proxy itself is not supported)",
            hint=hint,
        )
    if parts.username is not None or parts.password is not None or "@" in text:
        raise InputError(
            f"fetch proxy {shown} carries credentials in the URL",
            hint="name the user as [fetch] proxy_user and keep the password in the home's "
            "secrets (fetch-proxy), never in the URL",
        )
    if port == 0:
        raise InputError(f"fetch proxy {shown} names port 0", hint=hint)
    if not host:
        raise InputError(f"fetch proxy {text!r} names no host", hint=hint)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InputError(f"fetch proxy {text!r} has a path, query or fragment", hint=hint)
    try:
        name = _host_name(host) if _literal(host) is None else str(_literal(host))
    except idna.IDNAError as exc:
        raise InputError(f"fetch proxy {text!r} has a malformed host: {exc}", hint=hint) from None
    shown = f"[{name}]" if ":" in name else name
    return f"http://{shown}:{port or 80}"


def fetch_proxy_user(text: object) -> str:
    """The user a fetch proxy knows this node as (``[fetch] proxy_user``), checked for HTTP
    Basic authentication (RFC 7617): no colon, no control characters."""
    if not isinstance(text, str) or not text:
        raise InputError(f"fetch proxy user {text!r} is not a non-empty string")
    if ":" in text or _has_control(text.encode()):
        raise InputError(
            f"fetch proxy user {text!r} has a colon or a control character",
            hint="HTTP Basic authentication cannot carry either in a user name",
        )
    if len(text) > 256:
        raise InputError(f"fetch proxy user {text[:40]!r}... is longer than 256 characters")
    return text


def _has_control(data: bytes) -> bool:
    return any(byte < 0x20 or byte == 0x7F for byte in data)


def _redacted_proxy(text: str) -> str:
    """A proxy URL as error messages show it: all before its last ``@`` (credentials, however
    malformed the URL) left out, so that no message shows a password."""
    if "@" not in text:
        return repr(text)
    scheme, sep, _ = text.strip().partition("://")
    rest = text.rsplit("@", 1)[1]
    return repr(f"{scheme}://***@{rest}" if sep else f"***@{rest}")


class _RefusedError(Exception):
    """A connection the fetcher refuses to open (the reason is the message)."""


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses ``admit`` accepts, to exactly those it checked: the host
    is resolved once, here, so what was checked is what is connected to."""

    def __init__(self, admit: Callable[[str, int], list[_Address]]) -> None:
        self._admit = admit
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in self._admit(host, port):
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # admit returns at least one address
        raise error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _url_parts(url: str) -> SplitResult:
    """``url`` split, its host and port read: a URL from a presented certificate that cannot
    be (an unclosed IPv6 bracket, a port that is no number) is a :class:`FetchError`."""
    try:
        parts = urlsplit(url)
        _ = parts.hostname
    except ValueError as exc:
        raise FetchError(f"not fetching {url}: it is not a valid URL ({exc})") from None
    try:
        _ = parts.port
    except ValueError:
        raise FetchError(f"not fetching {url}: its port is not a number") from None
    return parts


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_GuardedBackend` (httpx takes no network backend, so
    its connection pool is replaced by one with ours; TLS still verifies the URL's name)."""

    def __init__(
        self,
        backend: _GuardedBackend,
        proxy: str | None = None,
        proxy_auth: tuple[bytes, bytes] | None = None,
    ) -> None:
        ssl_context = httpx.create_ssl_context()  # as httpx's default: certifi, SSL_CERT_FILE
        super().__init__(verify=ssl_context)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            # The guard replaces httpx's pool; an httpx that keeps it elsewhere would connect
            # unguarded. Refuse to fetch at all rather than fetch unchecked.
            raise FetchError(
                f"httpx {httpx.__version__} keeps its connection pool where the fetcher's "
                "address guard cannot replace it; no fetcher is made"
            )
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
        else:
            # Through a forward proxy: plain HTTP in absolute form, HTTPS tunnelled with
            # CONNECT (TLS end to end, verifying the URL's name). The backend connects to the
            # proxy only. Credentials go in Proxy-Authorization, to the proxy only.
            self._pool = httpcore.HTTPProxy(
                proxy_url=proxy,
                proxy_auth=proxy_auth,
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )


@dataclass
class HttpFetcher:
    """Fetches ``http``/``https`` URLs with a timeout and a size limit, never following
    redirects, never from addresses :func:`refused_address` refuses and, with an ``allow``
    list, only from the hosts and networks it allows (:class:`FetchAllowList`). A refused
    URL raises :class:`FetchError` before any connection is made.

    No proxy from the environment is used; with ``proxy`` (``[fetch] proxy``, see
    :func:`fetch_proxy_url`) every fetch goes through that forward proxy and nothing is
    connected to but the proxy. The proxy resolves the names, so the checks see the host as
    it is sent and what it resolves to *here*: the refusals apply as without a proxy; with an
    allow-list, only a name entry allows a name (the proxy resolves it again, so network
    entries apply to IP literals only). Only an IPv4 literal or a DNS name is sent.

    ``proxy_auth`` (user, password) answers a proxy that asks for HTTP Basic authentication;
    the credentials go to the proxy only (``Proxy-Authorization``), never in an error."""

    timeout: float = 5.0
    max_bytes: int = 4 * 1024 * 1024
    #: Where the node may fetch from; None: anywhere the refusals leave.
    allow: FetchAllowList | None = field(default=None, kw_only=True)
    #: Resolves host names (tests pass their own: no real DNS).
    resolve: Resolver = field(default=system_resolve, kw_only=True)
    #: The forward proxy every fetch goes through (canonical, see :func:`fetch_proxy_url`).
    proxy: str | None = field(default=None, kw_only=True)
    #: The proxy's user and password (HTTP Basic, RFC 7617); only with ``proxy``.
    proxy_auth: tuple[str, bytes] | None = field(default=None, kw_only=True, repr=False)
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # No proxy from the environment (trust_env): an unconfigured proxy would resolve and
        # connect where the refusals and the allow-list cannot see.
        if self.proxy is None:
            if self.proxy_auth is not None:
                raise InputError("fetch proxy credentials are given, but no fetch proxy")
            transport = _GuardedTransport(_GuardedBackend(self._admit))
        else:
            self.proxy = fetch_proxy_url(self.proxy)
            transport = _GuardedTransport(
                _GuardedBackend(self._admit_proxy), self.proxy, self._basic_credentials()
            )
        self._client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)

    def _basic_credentials(self) -> tuple[bytes, bytes] | None:
        if self.proxy_auth is None:
            return None
        user, password = self.proxy_auth
        if not isinstance(password, bytes) or not password:
            raise InputError(f"the password of fetch proxy user {user!r} is empty")
        if len(password) > 1024:
            raise InputError(f"the password of fetch proxy user {user!r} is over 1024 bytes")
        if _has_control(password):
            # A line break from a secret file written by hand, as a rule.
            raise InputError(
                f"the password of fetch proxy user {user!r} has a control character",
                hint="a password file holds the password on one line",
            )
        return fetch_proxy_user(user).encode(), password

    def _proxy_refused(self, url: str, answer: str) -> FetchError:
        """A fetch the proxy answered with 407: what to do about it (never the password)."""
        if self.proxy_auth is None:
            hint = (
                "the proxy asks for credentials: set [fetch] proxy_user and the fetch-proxy secret"
            )
        else:
            hint = (
                f"the proxy did not accept user {self.proxy_auth[0]!r}: check the "
                "fetch-proxy secret"
            )
        return FetchError(f"the fetch proxy {self.proxy} refused {url}: {answer}", hint=hint)

    def _admit_proxy(self, host: str, port: int) -> list[_Address]:
        """The proxy's addresses: the only connections a proxied fetcher opens. The proxy
        is the operator's choice, so its address is not refused (it lives on the plant or
        company network as a rule)."""
        assert self.proxy is not None
        proxy = urlsplit(self.proxy)
        if (proxy.hostname, proxy.port) != (host.lower().strip("[]"), port):
            raise _RefusedError(f"only the fetch proxy {self.proxy} is connected to, not {host}")
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            addresses = [ipaddress.ip_address(a) for a in self.resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise httpcore.ConnectError(f"cannot resolve the fetch proxy {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"the fetch proxy {host} resolves to no address")
        return addresses

    def _admit_for_proxy(self, host: str, port: int) -> None:
        """Checks a URL's host (as sent to the proxy) before the proxy sees it. Only an IP
        literal or a DNS name is sent: a proxy reads other hosts in its own way (a trailing
        dot stripped, a number or hex form taken as an IPv4 address, percent-escapes
        decoded). An IPv6 literal is not sent (httpcore writes it without brackets)."""
        literal = _literal(host)
        if literal is None:
            name = host[:-1] if host.endswith(".") else host
            labels = name.split(".")
            if not all(_LABEL.fullmatch(label) for label in labels) or _NUMERIC_LABEL.fullmatch(
                labels[-1]
            ):
                raise _RefusedError(
                    f"host {host} is neither an IP address nor a DNS name, and the fetch proxy "
                    "could read it as an address"
                )
        self._admit(host, port, proxied=True)
        if isinstance(literal, ipaddress.IPv6Address):
            raise _RefusedError(f"an IPv6 address ({host}) is not sent through the fetch proxy")

    def _admit(self, host: str, port: int, *, proxied: bool = False) -> list[_Address]:
        """The addresses ``host`` may be connected to, resolved once; raises :class:`_RefusedError`
        (or httpcore's ``ConnectError`` where the name does not resolve). ``proxied``: the
        proxy connects and resolves; a name that does not resolve here is left to it where
        the allow-list does not need its addresses (the result is then empty)."""
        allow = self.allow
        literal = _literal(host)
        by_name = allow is not None and allow.allows_name(host)
        outside = f"host {host} is not on this node's fetch allow-list"
        if allow is not None and not by_name and literal is None and not allow.networks:
            raise _RefusedError(outside)  # no network entry could allow it: not even resolved
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a) for a in self.resolve(host, port)]
            except (OSError, UnicodeError, ValueError) as exc:
                if not proxied:
                    raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
                addresses = []
            if not addresses:
                if not proxied:
                    raise httpcore.ConnectError(f"{host} resolves to no address")
                if allow is not None and not by_name:
                    raise _RefusedError(
                        f"{outside} by name, and its network cannot be checked: it does not "
                        "resolve here (the fetch proxy would resolve it)"
                    )
                return []
        for address in addresses:
            refused = _refusal(host, address)
            if refused is not None:
                raise _RefusedError(refused)
        if allow is not None and not by_name:
            for address in addresses:
                if not allow.allows_address(address):
                    if literal is None:
                        outside += f" (it resolves to {address}, outside the allowed networks)"
                    raise _RefusedError(outside)
            if proxied and literal is None:
                # The proxy resolves the name again: what it connects to is not what was
                # checked here (DNS rebinding, split horizon). Only a name entry allows a name.
                raise _RefusedError(
                    f"{outside} by name; a network entry cannot allow a name fetched through "
                    "the fetch proxy (the proxy resolves it again)"
                )
        return addresses

    def fetch(self, url: str) -> bytes:
        parts = _url_parts(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"not fetching {url}: only http and https URLs are followed")
        if not parts.hostname:
            raise FetchError(f"not fetching {url}: it names no host")
        try:
            request = self._client.build_request("GET", url, timeout=self.timeout)
            if self.proxy is not None:
                # The backend connects to the proxy only: the host is checked here, as httpx
                # writes it into the request line and CONNECT (not as urlsplit reads it).
                default_port = 443 if request.url.scheme == "https" else 80
                sent = request.url.raw_host.decode("ascii")
                self._admit_for_proxy(sent, request.url.port or default_port)
            response = self._client.send(request, stream=True)
            try:
                # Over plain HTTP the proxy answers for itself; inside a tunnel (HTTPS) only
                # the repository answers.
                from_proxy = self.proxy is not None and request.url.scheme == "http"
                if (
                    from_proxy
                    and response.status_code == 407
                    and "proxy-authenticate" in response.headers
                ):
                    raise self._proxy_refused(url, "407 Proxy Authentication Required")
                if from_proxy and response.status_code == 401 and self.proxy_auth is not None:
                    # The repository, or a proxy that answers wrong credentials with 401
                    # (tinyproxy does): over plain HTTP the two cannot be told apart.
                    raise FetchError(
                        f"{url} answered HTTP 401 through the fetch proxy {self.proxy}",
                        hint="a proxy that did not accept user "
                        f"{self.proxy_auth[0]!r} may answer so: check the fetch-proxy secret",
                    )
                if response.status_code != 200:
                    raise FetchError(f"{url} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchError(f"{url} is larger than {self.max_bytes} bytes")
                return bytes(body)
            finally:
                response.close()
        except _RefusedError as exc:
            raise FetchError(f"not fetching {url}: {exc}") from None
        except (httpx.InvalidURL, UnicodeError) as exc:
            # httpx decodes xn-- labels for the Host header (idna.IDNAError is a UnicodeError).
            raise FetchError(f"not fetching {url}: its host is malformed: {exc}") from None
        except httpx.ProxyError as exc:
            if str(exc).startswith(("407", "401")):
                # The proxy's answer to CONNECT (tinyproxy answers wrong credentials with 401).
                raise self._proxy_refused(url, str(exc).strip()) from None
            raise FetchError(
                f"cannot fetch {url} through the fetch proxy {self.proxy}: {exc}"
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            via = f" through the fetch proxy {self.proxy}" if self.proxy is not None else ""
            raise FetchError(f"cannot fetch {url}{via}: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch {url}: {exc}") from None


@dataclass(frozen=True)
class MirrorFetcher:
    """Serves URLs from a folder mirror: ``http://host:port/path`` is ``root/host/port/path``."""

    root: Path

    def fetch(self, url: str) -> bytes:
        parts = _url_parts(url)
        if parts.scheme != "http" or not parts.hostname:
            raise FetchError(f"the mirror holds http URLs only, not {url}")
        port = str(parts.port or 80)
        path = (self.root / parts.hostname / port / parts.path.lstrip("/")).resolve()
        if self.root.resolve() not in path.parents:
            raise FetchError(f"{url} points outside the mirror")
        try:
            return path.read_bytes()
        except OSError:
            raise FetchError(f"{url} is not in the mirror") from None
