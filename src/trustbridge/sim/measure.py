"""Measurements on a deployment's real artifacts, with trustbridge's own resolver.

- structure: CAs, cross-certificates, agreements, lists, published URLs and bytes;
- relying parties: what they hold (anchors, LOTL, lists; the time to read and verify them),
  what a cold resolution fetches (``.p7c`` bundles, CRLs), path lengths, cold and warm
  resolution times. Each identity is resolved by a relying party of another country through
  a :class:`trustbridge.trust.resolver.TrustResolver` whose fetcher answers from the
  deployment's published artifacts (in memory: no network latency in the times; the fetch
  counts and bytes are reported beside them);
- adding a country: what had to be issued, re-published and agreed for one more.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from trustbridge.errors import InputError, TrustbridgeError
from trustbridge.sim.events import experiment_rng
from trustbridge.sim.topologies import Deployment, Topology
from trustbridge.sim.world import RESOLVE_AT, Country, Organization
from trustbridge.trust.lists import ServiceKind, recognized
from trustbridge.trust.paths import FetchError, SearchLimits
from trustbridge.trust.resolver import TrustConfig, TrustResolver

__all__ = [
    "SIM_LIMITS",
    "Measurement",
    "Query",
    "Resolved",
    "Results",
    "StoreFetcher",
    "measure_resolutions",
    "path_crl_urls",
    "required_hosts",
    "sample_queries",
    "store_diff",
    "structure",
]

#: Search limits of the simulation's resolutions: large enough for a mesh of 100 roots. Each
#: resolution is also tried with the default limits first (``default_limits_*`` metrics).
SIM_LIMITS = SearchLimits(max_paths=32, max_certificates=1_000_000, max_fetches=100_000)
#: Warm resolutions timed per identity (the median is reported).
_WARM_REPEATS = 25


@dataclass(frozen=True)
class Measurement:
    """One figure: ``topology`` (empty for the world) at ``countries`` countries."""

    topology: str
    countries: int
    metric: str
    value: float
    unit: str
    note: str = ""


_CSV_FIELDS = ("topology", "countries", "metric", "value", "unit", "note")


@dataclass
class Results:
    """All measurements of a run, with lookups by topology, size and metric."""

    measurements: list[Measurement] = field(default_factory=list)

    def add(self, *items: Measurement) -> None:
        self.measurements.extend(items)

    def extend(self, items: Iterable[Measurement]) -> None:
        self.measurements.extend(items)

    def table(self) -> dict[tuple[str, int], dict[str, float]]:
        """(topology, countries) -> metric -> value, topologies only."""
        out: dict[tuple[str, int], dict[str, float]] = {}
        for m in self.measurements:
            if m.topology:
                out.setdefault((m.topology, m.countries), {})[m.metric] = m.value
        return out

    def value(self, topology: str, countries: int, metric: str) -> float:
        for m in self.measurements:
            if m.topology == topology and m.countries == countries and m.metric == metric:
                return m.value
        raise KeyError(f"no {metric} for {topology or 'the world'} at {countries} countries")

    def series(self, topology: str, metric: str) -> list[tuple[int, float]]:
        return sorted(
            (m.countries, m.value)
            for m in self.measurements
            if m.topology == topology and m.metric == metric
        )

    def sizes(self) -> list[int]:
        return sorted({m.countries for m in self.measurements})

    def unit(self, metric: str) -> str:
        return next((m.unit for m in self.measurements if m.metric == metric), "")

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_CSV_FIELDS)
        for m in self.measurements:
            writer.writerow((m.topology, m.countries, m.metric, _number(m.value), m.unit, m.note))
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str, *, source: str = "results.csv") -> Results:
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != _CSV_FIELDS:
            raise InputError(f"{source}: the columns must be {', '.join(_CSV_FIELDS)}")
        try:
            return cls(
                [
                    Measurement(
                        row["topology"],
                        int(row["countries"]),
                        row["metric"],
                        float(row["value"]),
                        row["unit"],
                        row["note"],
                    )
                    for row in reader
                ]
            )
        except ValueError as exc:
            raise InputError(f"{source}: line {reader.line_num}: {exc}") from None


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


# -- fetching from the published artifacts ------------------------------------------------------


@dataclass
class StoreFetcher:
    """Answers URLs from a deployment's published artifacts and records what was asked."""

    store: dict[str, bytes]
    down: frozenset[str] = frozenset()
    urls: list[str] = field(default_factory=list)

    def fetch(self, url: str) -> bytes:
        self.urls.append(url)
        host = urlsplit(url).hostname or ""
        if host in self.down:
            raise FetchError(f"{host} is down")
        try:
            return self.store[url]
        except KeyError:
            raise FetchError(f"{url} is not published") from None


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


# -- structure ----------------------------------------------------------------------------------


def structure(deployment: Deployment, store: dict[str, bytes]) -> dict[str, tuple[float, str]]:
    """Counts of what the deployment is made of: metric -> (value, unit)."""
    d = deployment
    topology = d.topology
    links = len(d.links)
    subordinate_links = len(d.countries) if topology is Topology.GLOBAL_ROOT else 0
    bridges = sum(
        1 for label in d.cas if label in ("bridge", "top-bridge") or label.startswith("region/")
    )
    offline = sum(1 for p in d.cas.values() if p.ca.certificate.issuer == p.ca.certificate.subject)
    if topology is Topology.GLOBAL_ROOT:
        offline = 1 + len(d.countries)  # the global root and every national CA's key
    lists = len(d.lists)
    issuers = {link.issuer for link in d.links}
    if topology is Topology.GLOBAL_ROOT:
        issuers = {d.world.global_root.label}
    return {
        "cross_certificates": (links, "certificates"),
        "link_certificates": (links + subordinate_links, "certificates"),
        "link_issuers": (len(issuers), "CAs"),
        "agreements": (len(d.agreements), "agreements"),
        "cas": (len(d.cas), "CAs"),
        "bridges": (bridges, "CAs"),
        "offline_keys": (offline + (lists + 1 if lists else 0), "keys"),
        "crl_issuers": (len(d.cas), "CAs"),
        "trust_lists": (lists, "lists"),
        "lotls": (1 if d.lotl is not None else 0, "lists"),
        "signed_lists": (lists + (1 if d.lotl is not None else 0), "lists"),
        "list_operators": (lists + (1 if lists else 0), "operators"),
        "identities": (sum(len(c.organizations) for c in d.countries), "identities"),
        "published_artifacts": (len(store), "URLs"),
        "published_bytes": (sum(len(v) for v in store.values()), "bytes"),
        "migration": (1 if topology is Topology.GLOBAL_ROOT else 0, "flag"),
        "service_recognition": (1 if topology.listed else 0, "flag"),
    }


def store_diff(before: dict[str, bytes], after: dict[str, bytes]) -> tuple[int, int, int, int]:
    """(new URLs, changed URLs, bytes (re)published, hosts that published) between two stores."""
    new = [u for u in after if u not in before]
    changed = [u for u in after if u in before and before[u] != after[u]]
    touched = new + changed
    return (
        len(new),
        len(changed),
        sum(len(after[u]) for u in touched),
        len({host_of(u) for u in touched}),
    )


# -- resolutions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A relying party of ``relying`` resolves ``organization`` (of another country)."""

    relying: Country
    organization: Organization


def sample_queries(
    countries: Sequence[Country], *, seed: int, cap: int
) -> tuple[list[Query], bool]:
    """Every identity, each resolved from a random other country, or ``cap`` of them drawn at
    random where there are more; True where it is a sample. The same for every topology."""
    rng = experiment_rng(seed, "queries", len(countries))
    identities = [(c, o) for c in countries for o in c.organizations]
    sampled = len(identities) > cap
    if sampled:
        identities = rng.sample(identities, cap)
    queries = []
    for holder, organization in identities:
        others = [c for c in countries if c.code != holder.code]
        queries.append(Query(rng.choice(others), organization))
    return queries, sampled


@dataclass(frozen=True)
class Resolved:
    """What resolving one identity did."""

    query: Query
    ok: bool
    error: str | None
    route: str
    #: The CAs of the path (labels), anchor first, the identity's issuer last.
    labels: tuple[str, ...]
    length: int
    cold: float
    warm: float
    fetches: int
    #: URLs fetched (distinct) and their bytes.
    urls: frozenset[str]
    fetched_bytes: int
    #: Hosts a cold resolution cannot do without: the CRL distribution points of every
    #: certificate of the path, and the AIA bundles that led to each issuer but the anchor.
    hosts: frozenset[str]
    #: Hours the answer is cached (valid_until - validated_at).
    ttl: float
    #: Whether the default SearchLimits found the path (None: not tried).
    default_limits_ok: bool | None
    #: The group's reference level the resolver reported ("" where none).
    reference_level: str = ""


def _labels(deployment: Deployment) -> dict[tuple[bytes, bytes], str]:
    return {
        (
            p.ca.certificate.subject.public_bytes(),
            p.ca.certificate.public_key().public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo
            ),
        ): label
        for label, p in deployment.cas.items()
    }


def _urls(certificate: x509.Certificate) -> tuple[list[str], list[str]]:
    """(CRL distribution point URLs, AIA caIssuers URLs) of a certificate."""
    crls: list[str] = []
    issuers: list[str] = []
    try:
        points = certificate.extensions.get_extension_for_oid(
            ExtensionOID.CRL_DISTRIBUTION_POINTS
        ).value
        assert isinstance(points, x509.CRLDistributionPoints)
        crls = [
            n.value
            for p in points
            for n in p.full_name or ()
            if isinstance(n, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        pass
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
        issuers = [
            d.access_location.value
            for d in access
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        pass
    return crls, issuers


def path_crl_urls(path: Sequence[x509.Certificate]) -> list[str]:
    """The CRL distribution points of every certificate of ``path`` but the anchor."""
    return list(dict.fromkeys(url for c in path[1:] for url in _urls(c)[0]))


def required_hosts(path: Sequence[x509.Certificate]) -> frozenset[str]:
    """Hosts a cold resolution of ``path`` (anchor first) cannot do without."""
    hosts: set[str] = set()
    for position, certificate in enumerate(path[1:], start=1):
        crls, issuers = _urls(certificate)
        hosts |= {host_of(u) for u in crls}
        if position >= 2:
            hosts |= {host_of(u) for u in issuers}
    return frozenset(hosts)


def resolve_one(
    deployment: Deployment,
    query: Query,
    *,
    config_for: dict[str, TrustConfig],
    store: dict[str, bytes],
    labels: dict[tuple[bytes, bytes], str],
    try_default_limits: bool,
    down: frozenset[str] = frozenset(),
) -> Resolved:
    """Resolve one identity cold (a fresh resolver), then warm (the same resolver again)."""
    config = config_for[query.relying.code]
    certificate = deployment.identity(query.organization)
    default_ok: bool | None = None
    if try_default_limits:
        trial = TrustResolver(config, fetcher=StoreFetcher(store, down))
        try:
            trial.resolve(certificate, at=RESOLVE_AT)
            default_ok = True
        except TrustbridgeError:
            default_ok = False
    fetcher = StoreFetcher(store, down)
    resolver = TrustResolver(config, fetcher=fetcher, limits=SIM_LIMITS)
    started = time.perf_counter()
    try:
        resolution = resolver.resolve(certificate, at=RESOLVE_AT)
    except TrustbridgeError as exc:
        cold = time.perf_counter() - started
        distinct = frozenset(fetcher.urls)
        return Resolved(
            query,
            False,
            exc.message,
            "",
            (),
            0,
            cold,
            0.0,
            len(fetcher.urls),
            distinct,
            sum(len(store.get(u, b"")) for u in distinct),
            frozenset(),
            0.0,
            default_ok,
        )
    cold = time.perf_counter() - started
    warm_times = []
    for _ in range(_WARM_REPEATS):
        started = time.perf_counter()
        resolver.resolve(certificate, at=RESOLVE_AT)
        warm_times.append(time.perf_counter() - started)
    path = resolution.path
    path_labels = tuple(
        labels.get(
            (
                c.subject.public_bytes(),
                c.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
            ),
            "?",
        )
        for c in path[:-1]
    )
    distinct = frozenset(fetcher.urls)
    return Resolved(
        query=query,
        ok=True,
        error=None,
        route=resolution.route.value,
        labels=path_labels,
        length=len(path),
        cold=cold,
        warm=statistics.median(warm_times),
        fetches=len(fetcher.urls),
        urls=distinct,
        fetched_bytes=sum(len(store.get(u, b"")) for u in distinct),
        hosts=required_hosts(path),
        ttl=(resolution.valid_until - resolution.validated_at).total_seconds() / 3600,
        default_limits_ok=default_ok,
        reference_level=str(resolution.reference_level or ""),
    )


def measure_resolutions(
    deployment: Deployment,
    queries: Sequence[Query],
    store: dict[str, bytes],
    *,
    default_limit_trials: int,
    advance: Callable[[], None] | None = None,
) -> tuple[list[Resolved], dict[str, tuple[float, str]]]:
    """Resolve every query; the relying parties' figures: metric -> (value, unit)."""
    figures: dict[str, tuple[float, str]] = {}
    lists = None
    if deployment.topology.listed:
        spent = []
        for _ in range(2):  # the better of two: the machine is shared
            started = time.perf_counter()
            lists = deployment.read_lists()
            spent.append(time.perf_counter() - started)
        figures["rp_list_ingest_ms"] = (min(spent) * 1000, "ms")
    parties = {c.code: deployment.relying_party(c, lists) for c in deployment.countries}
    config_for = {code: rp.config for code, rp in parties.items()}
    holds = [rp.hold_bytes for rp in parties.values()]
    figures["rp_hold_bytes"] = (statistics.fmean(holds), "bytes")
    list_bytes = sum(len(signed) for _, signed in deployment.lists.values())
    if deployment.lotl is not None:
        list_bytes += len(deployment.lotl[1])
    figures["rp_list_bytes"] = (list_bytes, "bytes")
    labels = _labels(deployment)
    resolved: list[Resolved] = []
    for index, query in enumerate(queries):
        resolved.append(
            resolve_one(
                deployment,
                query,
                config_for=config_for,
                store=store,
                labels=labels,
                try_default_limits=index < default_limit_trials,
            )
        )
        if advance is not None:
            advance()
    good = [r for r in resolved if r.ok]
    figures["identities_checked"] = (len(resolved), "identities")
    figures["identities_resolved"] = (len(good), "identities")
    trials = [r.default_limits_ok for r in resolved if r.default_limits_ok is not None]
    figures["default_limits_checked"] = (len(trials), "identities")
    figures["default_limits_failures"] = (sum(1 for ok in trials if not ok), "identities")
    if good:
        colds = [r.cold * 1000 for r in good]
        figures["resolve_cold_ms"] = (statistics.median(colds), "ms")
        figures["resolve_cold_max_ms"] = (max(colds), "ms")
        figures["resolve_warm_us"] = (statistics.median(r.warm * 1e6 for r in good), "us")
        figures["path_length_mean"] = (statistics.fmean(r.length for r in good), "certificates")
        figures["path_length_max"] = (max(r.length for r in good), "certificates")
        figures["rp_fetches_per_resolution"] = (
            statistics.fmean(r.fetches for r in good),
            "fetches",
        )
        figures["rp_fetch_bytes_per_resolution"] = (
            statistics.fmean(r.fetched_bytes for r in good),
            "bytes",
        )
        union = frozenset().union(*(r.urls for r in good))
        figures["rp_fetch_bytes_all"] = (sum(len(store.get(u, b"")) for u in union), "bytes")
        figures["answer_ttl_hours"] = (statistics.fmean(r.ttl for r in good), "hours")
        figures["reference_level_share"] = (
            sum(1 for r in good if r.reference_level) / len(good),
            "share",
        )
    if deployment.topology.listed and lists is not None:
        _, trust_lists = lists
        found = sum(
            1
            for c in deployment.countries
            if any(
                recognized(t, c.body.certificate, kind=ServiceKind.CAB, at=RESOLVE_AT)
                for t in trust_lists
            )
        )
        figures["services_recognized"] = (found / len(deployment.countries), "share")
    else:
        figures["services_recognized"] = (0.0, "share")
    return resolved, figures
