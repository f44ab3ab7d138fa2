"""A discrete-event model of revocation, outages and key compromise, driven by the measurements.

Time is in hours. :class:`EventLoop` is a plain heap of (time, sequence, action); every random
draw comes from one ``random.Random`` per experiment, seeded from the run's seed and the
experiment's name, so a seed gives the same figures.

What a relying party does is what trustbridge's resolver does (``trust/resolver.py``):

- it caches an answer until the earliest of its path certificates' expiry, the ``nextUpdate`` of
  the CRLs it was validated with, and the ``next_update`` of the trust lists and LOTL it used
  (``TrustResolver._until``, ``_trust_list``; a cached answer is used while
  ``validated_at <= at < valid_until``, ``TrustResolver._cached``);
- without a cached answer it builds the path anew with a fresh ``PathBuilder``
  (``TrustResolver._builder``): AIA ``.p7c`` bundles and the CRLs of every certificate of the path
  are fetched again, and with revocation ``require`` (the default) a CRL it cannot fetch fails the
  resolution (``paths.PathBuilder.revocation_info``, ``validation.RevocationMode.REQUIRE``);
- it checks revocation with CRLs only: OCSP responses count only where a caller passes them
  (``ValidationParams.ocsps``), so an OCSP responder's outage does not touch it. The model also
  shows a relying party that asks OCSP instead, for comparison;
- trust lists and the LOTL are read ahead of time and must be fresh when read
  (``lists.read_trust_list`` refuses a list past its ``next_update``: ``StaleListError``), so a
  relying party that cannot fetch the new list before the old one expires loses that scheme.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Artifact",
    "AvailabilityCase",
    "AvailabilityResult",
    "EventLoop",
    "Failures",
    "Outage",
    "RecoveryPlan",
    "RevocationCase",
    "availability",
    "experiment_rng",
    "recovery",
    "revocation_delays",
    "triangular",
]


def experiment_rng(seed: int, *names: object) -> random.Random:
    """The random source of one experiment: the same for the same seed and names."""
    text = "/".join(str(n) for n in (seed, *names))
    # A simulation's draws, not secrets.
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8]))  # noqa: S311


def triangular(rng: random.Random, bounds: Sequence[float]) -> float:
    """A triangular draw from (minimum, most likely, maximum)."""
    low, mode, high = bounds
    return rng.triangular(low, high, mode)


class EventLoop:
    """Events ordered by time (ties by the order they were scheduled)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0

    def at(self, time: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``time`` (not before now)."""
        heapq.heappush(self._queue, (max(time, self.now), self._sequence, action))
        self._sequence += 1

    def after(self, delay: float, action: Callable[[], None]) -> None:
        self.at(self.now + delay, action)

    def run(self, until: float = math.inf) -> None:
        """Process events up to ``until``; later ones stay queued."""
        while self._queue and self._queue[0][0] <= until:
            time, _, action = heapq.heappop(self._queue)
            self.now = time
            action()
        self.now = max(self.now, until) if until != math.inf else self.now


# -- published artifacts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """Something signed that a relying party's answer depends on: a CRL, a trust list, the LOTL.

    It is issued every ``interval`` hours, valid for ``validity`` hours (``nextUpdate``); with
    ``on_change`` a change is published at once. ``held``: the relying party keeps it and
    fetches a new one only when it expires (lists); otherwise it is fetched anew for every
    validation (CRLs). ``host``: where it is published.
    """

    key: str
    host: str
    interval: float
    validity: float
    on_change: bool
    held: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.interval <= self.validity:
            raise ValueError(
                f"{self.key}: the issuing interval must be positive and at most the validity"
            )


@dataclass
class _Version:
    issued: float
    next_update: float
    #: Carries the revocation (issued at or after it).
    revoked: bool


class _Publisher:
    """The versions of one artifact over time: periodic issuance plus one change."""

    def __init__(self, artifact: Artifact, phase: float) -> None:
        self.artifact = artifact
        self.phase = phase
        self.change_at: float | None = None

    def served(self, t: float) -> _Version:
        """The newest version published at ``t``."""
        a = self.artifact
        k = math.floor((t - self.phase) / a.interval)
        issued = self.phase + k * a.interval
        if self.change_at is not None and a.on_change and self.change_at <= t:
            issued = max(issued, self.change_at)
        revoked = self.change_at is not None and issued >= self.change_at
        return _Version(issued, issued + a.validity, revoked)


# -- revocation propagation ---------------------------------------------------------------------


@dataclass(frozen=True)
class RevocationCase:
    """One relying party's answer about one identity, and what would carry a revocation.

    ``artifacts``: everything the answer depends on; ``carriers``: the keys of those that
    publish this revocation (the issuing CA's CRL for an identity; the CRL above a TSP and,
    in a group, its trust list; the CRL or LOTL that cuts a country off).
    """

    artifacts: tuple[Artifact, ...]
    carriers: frozenset[str]

    def __post_init__(self) -> None:
        keys = {a.key for a in self.artifacts}
        if not self.carriers or not self.carriers <= keys:
            raise ValueError(f"carriers {sorted(self.carriers)} must be among {sorted(keys)}")


def _revocation_run(case: RevocationCase, rng: random.Random) -> float:
    """Hours from a revocation until the relying party, re-validating whenever its cached answer
    expires, first rejects the identity."""
    publishers = {a.key: _Publisher(a, rng.uniform(0, a.interval)) for a in case.artifacts}
    longest = max(a.validity for a in case.artifacts)
    loop = EventLoop()
    held: dict[str, _Version] = {}
    revoked_at = 3 * longest + rng.uniform(0, longest)
    outcome: list[float] = []

    def validate() -> None:
        now = loop.now
        versions = []
        for key, publisher in publishers.items():
            version = held.get(key)
            if version is None or not publisher.artifact.held or version.next_update <= now:
                version = publisher.served(now)
                held[key] = version
            versions.append((key, version))
        if any(v.revoked for key, v in versions if key in case.carriers):
            outcome.append(now - revoked_at)
            return
        # TrustResolver._until: the answer holds until the earliest nextUpdate it depends on.
        loop.at(min(v.next_update for _, v in versions), validate)

    def revoke() -> None:
        for key in case.carriers:
            publishers[key].change_at = loop.now

    loop.at(0.0, validate)
    loop.at(revoked_at, revoke)
    while not outcome:
        loop.run(until=loop.now + longest + 1)
        if loop.now > revoked_at + 100 * longest:  # pragma: no cover - a carrier never updates
            raise RuntimeError("the revocation never reached the relying party")
    return outcome[0]


def revocation_delays(
    cases: Sequence[RevocationCase], *, runs: int, rng: random.Random
) -> list[float]:
    """Delays (hours) over ``runs`` revocations, each of a case drawn at random."""
    return [_revocation_run(rng.choice(list(cases)), rng) for _ in range(runs)]


# -- availability -------------------------------------------------------------------------------

Interval = tuple[float, float]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def _covering(intervals: Sequence[Interval], t: float) -> Interval | None:
    """The interval of (sorted, merged) ``intervals`` that holds ``t``."""
    index = bisect.bisect_right(intervals, (t, math.inf)) - 1
    if index >= 0 and intervals[index][0] <= t < intervals[index][1]:
        return intervals[index]
    return None


def _overlap(intervals: Sequence[Interval], window: Interval) -> float:
    low, high = window
    return sum(max(0.0, min(e, high) - max(s, low)) for s, e in intervals)


@dataclass(frozen=True)
class AvailabilityCase:
    """One identity seen by one relying party: the hosts a cold resolution cannot do without,
    and the artifacts whose expiry ends a cached answer (held lists among them)."""

    hosts: frozenset[str]
    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True)
class Outage:
    """``hosts`` are down from ``start`` for ``hours``."""

    hosts: frozenset[str]
    start: float
    hours: float


@dataclass(frozen=True)
class AvailabilityResult:
    """Shares of time, over the window asked for, in which an answer could be had."""

    #: For an identity the relying party resolves for the first time (cold).
    cold: float
    #: For an identity it resolved before (its cached answer, renewed when it expires).
    warm: float
    #: The two weighted by the share of cold resolutions.
    overall: float


class Failures:
    """When each host is down: random failures (exponential times to failure and to repair,
    drawn per host from the seed, so a host fails alike in every topology) and outages."""

    def __init__(
        self,
        *,
        seed: int,
        horizon: float,
        mtbf: float | None = None,
        mttr: float | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.seed = seed
        self.horizon = horizon
        self.mtbf = mtbf
        self.mttr = mttr
        self.outage = outage
        self._down: dict[str, list[Interval]] = {}

    def down(self, host: str) -> list[Interval]:
        found = self._down.get(host)
        if found is None:
            intervals: list[Interval] = []
            if self.mtbf is not None and self.mttr is not None:
                intervals = _failures(
                    experiment_rng(self.seed, "host", host), self.mtbf, self.mttr, self.horizon
                )
            if self.outage is not None and host in self.outage.hosts:
                intervals.append((self.outage.start, self.outage.start + self.outage.hours))
            found = self._down[host] = _merge(intervals)
        return found


def _failures(rng: random.Random, mtbf: float, mttr: float, horizon: float) -> list[Interval]:
    """A failure process as events: failures and repairs, one after the other."""
    loop = EventLoop()
    intervals: list[Interval] = []

    def fail() -> None:
        start = loop.now
        loop.after(rng.expovariate(1 / mttr), lambda: repair(start))

    def repair(start: float) -> None:
        intervals.append((start, loop.now))
        loop.after(rng.expovariate(1 / mtbf), fail)

    loop.at(rng.expovariate(1 / mtbf), fail)
    loop.run(until=horizon)
    return intervals


def availability(
    cases: Sequence[AvailabilityCase],
    failures: Failures,
    *,
    seed: int,
    cold_fraction: float,
    window: Interval | None = None,
) -> AvailabilityResult:
    """How much of ``window`` (default: the whole horizon) relying parties can resolve the
    identities of ``cases``, averaged over the cases.

    Cold: every host the case needs is up and no held list it depends on has expired
    unrefreshed. Warm: the relying party keeps its answer until the earliest ``nextUpdate``
    it depends on and then validates again, at once where it can, else as soon as the hosts
    are back; a held list is refreshed when it expires, or when its host is back.
    """
    window = window or (0.0, failures.horizon)
    phases: dict[str, float] = {}

    def publisher(artifact: Artifact) -> _Publisher:
        if artifact.key not in phases:
            phases[artifact.key] = experiment_rng(seed, "phase", artifact.key).uniform(
                0, artifact.interval
            )
        return _Publisher(artifact, phases[artifact.key])

    cold_total = warm_total = 0.0
    for case in cases:
        cold, warm = _case_availability(case, failures, publisher, window)
        cold_total += cold
        warm_total += warm
    count = max(len(cases), 1)
    cold, warm = cold_total / count, warm_total / count
    return AvailabilityResult(cold, warm, cold_fraction * cold + (1 - cold_fraction) * warm)


def _held_versions(
    artifact: Artifact, source: _Publisher, failures: Failures
) -> tuple[list[tuple[float, float]], list[Interval]]:
    """A held list over the horizon: (time fetched, its next_update) for every version the
    relying party held, and when it held none that was fresh (its host down at expiry)."""
    host_down = failures.down(artifact.host)
    t, chain, stale = 0.0, [], []
    version = source.served(0.0)
    while t < failures.horizon:
        chain.append((t, version.next_update))
        expiry = version.next_update
        blocked = _covering(host_down, expiry)
        t = blocked[1] if blocked is not None else expiry
        if blocked is not None:
            stale.append((expiry, t))
        version = source.served(t)
    return chain, stale


def _case_availability(
    case: AvailabilityCase,
    failures: Failures,
    publisher: Callable[[Artifact], _Publisher],
    window: Interval,
) -> tuple[float, float]:
    """(cold, warm) share of ``window`` in which the case resolves."""
    horizon = failures.horizon
    span = window[1] - window[0]
    down = _merge(i for h in case.hosts for i in failures.down(h))
    stale: list[Interval] = []
    held: dict[str, list[tuple[float, float]]] = {}
    for artifact in case.artifacts:
        if artifact.held:
            held[artifact.key], gaps = _held_versions(artifact, publisher(artifact), failures)
            stale += gaps
    unavailable = _merge([*down, *stale])
    cold = 1 - _overlap(unavailable, window) / span
    publishers = [publisher(a) for a in case.artifacts if not a.held]

    def until(t: float) -> float:
        # TrustResolver._until: the earliest nextUpdate the answer depends on.
        times = [p.served(t).next_update for p in publishers]
        for chain in held.values():
            index = bisect.bisect_right(chain, (t, math.inf)) - 1
            times.append(chain[max(index, 0)][1])
        return max(min(times), t + 1e-6)

    loop = EventLoop()
    outages: list[Interval] = []

    def expire() -> None:
        blocked = _covering(unavailable, loop.now)
        if blocked is not None:
            outages.append((loop.now, blocked[1]))
            loop.at(blocked[1], expire)
        elif loop.now < horizon:
            loop.at(until(loop.now), expire)

    loop.at(0.0, expire)
    loop.run(until=horizon)
    warm = 1 - _overlap(_merge(outages), window) / span
    return cold, warm


# -- recovery from a key compromise -------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A step of a recovery: it starts when ``after`` are done and lasts ``hours``."""

    name: str
    hours: float
    after: tuple[str, ...] = ()


@dataclass
class RecoveryPlan:
    """The steps after a compromise and, per affected relationship, the steps it waits for."""

    tasks: list[Task] = field(default_factory=list)
    #: For each affected relationship, the names of the tasks that restore it.
    relationships: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, name: str, hours: float, after: Iterable[str] = ()) -> str:
        self.tasks.append(Task(name, hours, tuple(after)))
        return name


@dataclass(frozen=True)
class RecoveryResult:
    #: Hours until the last affected relationship was restored.
    hours: float
    #: Sum over affected relationships of the hours each was down.
    relationship_hours: float


def recovery(plan: RecoveryPlan, *, weights: Sequence[float] | None = None) -> RecoveryResult:
    """Run a recovery plan: each task starts once everything it waits for is done.
    ``weights``: how much each relationship counts in :attr:`RecoveryResult.relationship_hours`
    (1 each by default)."""
    loop = EventLoop()
    done: dict[str, float] = {}
    waiting = {t.name: set(t.after) for t in plan.tasks}
    by_name = {t.name: t for t in plan.tasks}
    dependents: dict[str, list[str]] = {}
    for task in plan.tasks:
        for before in task.after:
            dependents.setdefault(before, []).append(task.name)

    def finish(name: str) -> None:
        done[name] = loop.now
        for other in dependents.get(name, ()):
            waiting[other].discard(name)
            if not waiting[other]:
                start(other)

    def start(name: str) -> None:
        loop.after(by_name[name].hours, lambda: finish(name))

    for task in plan.tasks:
        if not task.after:
            start(task.name)
    loop.run()
    missing = sorted({n for r in plan.relationships for n in r} - set(done))
    if missing:
        raise ValueError(f"recovery plan never finishes {missing}")
    restored = [max((done[n] for n in r), default=0.0) for r in plan.relationships]
    weights = weights if weights is not None else [1.0] * len(restored)
    if len(weights) != len(restored):
        raise ValueError("one weight per relationship")
    return RecoveryResult(
        max(restored, default=0.0), sum(w * h for w, h in zip(weights, restored, strict=True))
    )


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, 95th percentile, maximum)."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.fmean(ordered), p95, ordered[-1]
