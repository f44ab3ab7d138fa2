"""Helpers every benchmark shares: timing, result records, the printed table, the JSON file.

Project rules for benchmarks (DESIGN.md 8): each prints our figure beside a baseline measured
in the same run, as a ratio oriented so that higher is better, and writes
``bench/results/<name>.json``: a list of records with exactly the keys ``metric``, ``unit``,
``ours``, ``baseline``, ``baseline_name``, ``ratio`` and ``goal`` (the minimum ratio the issue
asks for, or null); where the issue sets an absolute limit instead ("under 20 seconds"), the
record adds ``"goal_kind": "max"`` and ``goal`` is that limit on ``ours``, in ``unit``.
Benchmarks are not pass/fail: a missed goal is printed, not an exit code.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.policy_decl import PKIXValidationParams

__all__ = [
    "finish",
    "PYHANKO_ANY_POLICY",
    "NoBaseline",
    "Paired",
    "PlainValidation",
    "RESULTS_DIR",
    "Record",
    "Stopwatch",
    "Timing",
    "in_ci",
    "limit_record",
    "machine_summary",
    "print_table",
    "rate_record",
    "stopwatch",
    "time_calls",
    "time_record",
    "write_results",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: pyhanko-certvalidator's name for anyPolicy.
PYHANKO_ANY_POLICY = "any_policy"


def in_ci() -> bool:
    """True under ``CI=true``: missing prerequisites are errors there, not skips."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def machine_summary() -> str:
    """One line naming where the figures were measured."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        crypto = version("cryptography")
    except PackageNotFoundError:  # pragma: no cover - cryptography is a dependency
        crypto = "?"
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"cryptography {crypto}"
    )


# -- timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """``count`` operations in ``seconds`` of wall-clock time."""

    count: int
    seconds: float

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    @property
    def per_op_us(self) -> float:
        """Microseconds per operation."""
        return self.seconds / self.count * 1e6 if self.count else float("nan")


class Stopwatch:
    """Wall-clock seconds between entering and leaving :func:`stopwatch`."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.end: float | None = None

    @property
    def seconds(self) -> float:
        return (self.end if self.end is not None else time.perf_counter()) - self.start


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """``with stopwatch() as sw: ...``; then ``sw.seconds``."""
    watch = Stopwatch()
    try:
        yield watch
    finally:
        watch.end = time.perf_counter()


def time_calls(fn: Callable[[], object], *, seconds: float, min_calls: int = 10) -> Timing:
    """Call ``fn`` repeatedly for at least ``seconds`` (and ``min_calls`` times)."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline or count < min_calls:
        fn()
        count += 1
        now = time.perf_counter()
    return Timing(count, now - start)


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One result line; :meth:`to_json` gives the record the results file holds."""

    metric: str
    unit: str
    ours: float
    baseline: float
    baseline_name: str
    #: ours/baseline for rates, baseline/ours for durations: higher is better.
    ratio: float
    goal: float | None = None
    #: What the metric was measured on (a backend, a key type); part of the metric's name.
    variant: str | None = None
    #: None: ``goal`` is the minimum ratio. "max": ``goal`` is an absolute limit on ``ours``
    #: (in ``unit``), as an issue asks for "under 20 seconds".
    goal_kind: str | None = None

    @property
    def name(self) -> str:
        return f"{self.metric}/{self.variant}" if self.variant else self.metric

    @property
    def status(self) -> str:
        if self.goal is None:
            return "-"
        if self.goal_kind == "max":
            return "PASS" if self.ours <= self.goal else "ABOVE"
        return "PASS" if self.ratio >= self.goal else "BELOW"

    @property
    def missed(self) -> bool:
        """A goal was set and not reached."""
        return self.status in ("BELOW", "ABOVE")

    def goal_text(self) -> str:
        """The goal as the table shows it: a minimum ratio, or "<= limit unit"."""
        if self.goal is None:
            return "-"
        if self.goal_kind == "max":
            return f"<= {_fmt(self.goal)} {self.unit}"
        return f"{self.goal:.0%}"

    def missed_text(self) -> str:
        """How the goal was missed: "name (12.3 s > <= 10 s)" or "name (4.7% < 10%)"."""
        if self.goal_kind == "max":
            return f"{self.name} ({_fmt(self.ours)} {self.unit}, goal {self.goal_text()})"
        return f"{self.name} ({self.ratio:.1%} < {self.goal_text()})"

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "metric": self.name,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "goal": self.goal,
        }
        if self.goal_kind is not None:
            record["goal_kind"] = self.goal_kind
        return record


def rate_record(
    metric: str,
    *,
    unit: str,
    ours: float,
    baseline: float,
    baseline_name: str,
    goal: float | None = None,
    variant: str | None = None,
) -> Record:
    """A record for a rate (operations per second): ratio = ours / baseline."""
    return Record(metric, unit, ours, baseline, baseline_name, ours / baseline, goal, variant)


def time_record(
    metric: str,
    *,
    unit: str,
    ours: float,
    baseline: float,
    baseline_name: str,
    goal: float | None = None,
    variant: str | None = None,
) -> Record:
    """A record for a duration (lower is better): ratio = baseline / ours."""
    return Record(metric, unit, ours, baseline, baseline_name, baseline / ours, goal, variant)


def limit_record(
    metric: str,
    *,
    unit: str,
    ours: float,
    baseline: float,
    baseline_name: str,
    goal: float | None,
    variant: str | None = None,
) -> Record:
    """A record for a cost (a duration, a size) whose goal is an absolute upper limit on ours.

    ratio = baseline / ours (higher is better, as for :func:`time_record`); the goal, in
    ``unit``, is met when ``ours <= goal`` (``"goal_kind": "max"`` in the results file).
    """
    return Record(
        metric,
        unit,
        ours,
        baseline,
        baseline_name,
        baseline / ours,
        goal,
        variant,
        goal_kind="max" if goal is not None else None,
    )


@dataclass(frozen=True)
class NoBaseline(Record):
    """A record whose baseline did not finish, or that has none: baseline and ratio are null."""

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "baseline": None, "ratio": None}


@dataclass(frozen=True)
class Paired:
    """Ours and a baseline timed in turns: the median seconds per call of each."""

    ours: float
    baseline: float
    #: Calls made, warm-up excluded.
    ours_calls: int
    baseline_calls: int

    @classmethod
    def measure(
        cls,
        ours: Callable[[], object],
        baseline: Callable[[], object],
        *,
        seconds: float,
        sample: float = 0.002,
    ) -> Paired:
        """Samples of ours and of the baseline in turns for ``seconds`` (both together).

        A sample is one call, or as many as last about ``sample`` seconds for fast calls.
        Medians over the samples, each taken right beside the other side's: the machine is
        shared, its speed drifts, and a sample that another process slowed down is an outlier
        rather than a weight on one side.
        """
        batches = []
        for fn in (ours, baseline):
            with stopwatch() as sw:
                for _ in range(3):
                    fn()
            batches.append(max(1, int(sample / (sw.seconds / 3))))
        timed: tuple[list[float], list[float]] = ([], [])
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(timed[0]) < 11:
            for fn, batch, samples in zip((ours, baseline), batches, timed, strict=True):
                start = time.perf_counter()
                for _ in range(batch):
                    fn()
                samples.append((time.perf_counter() - start) / batch)
        return cls(
            ours=statistics.median(timed[0]),
            baseline=statistics.median(timed[1]),
            ours_calls=len(timed[0]) * batches[0],
            baseline_calls=len(timed[1]) * batches[1],
        )


@dataclass(frozen=True)
class PlainValidation:
    """A baseline: plain pyhanko-certvalidator validating a leaf against fixed inputs, parsed
    once (outside the clock); a fresh context per call, ``require`` revocation, no fetching."""

    anchors: tuple[asn1_x509.Certificate, ...]
    others: tuple[asn1_x509.Certificate, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    policies: frozenset[str]
    moment: datetime

    @classmethod
    def of(
        cls,
        *,
        anchors: Sequence[x509.Certificate],
        others: Sequence[x509.Certificate],
        crls: Sequence[bytes],
        policies: frozenset[str],
        moment: datetime,
    ) -> PlainValidation:
        """From our types; no policies means any policy."""

        def asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
            return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))

        return cls(
            anchors=tuple(asn1(a) for a in anchors),
            others=tuple(asn1(c) for c in others),
            crls=tuple(asn1_crl.CertificateList.load(c) for c in crls),
            policies=policies or frozenset({PYHANKO_ANY_POLICY}),
            moment=moment,
        )

    def run(self, leaf: asn1_x509.Certificate) -> tuple[bytes, ...]:
        """The validated path's DER, trust anchor first."""
        context = ValidationContext(
            trust_roots=list(self.anchors),
            other_certs=list(self.others),
            crls=list(self.crls),
            allow_fetching=False,
            moment=self.moment,
            revocation_mode="require",
        )
        validator = CertificateValidator(
            leaf,
            validation_context=context,
            pkix_params=PKIXValidationParams(
                user_initial_policy_set=self.policies, initial_explicit_policy=True
            ),
        )
        path = asyncio.run(validator.async_validate_path())
        return tuple(c.dump() for c in path.iter_certs(True))


# -- output -------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def print_table(
    records: Sequence[Record],
    *,
    title: str,
    variant_header: str = "variant",
    baseline_header: str = "baseline",
) -> None:
    """A plain-text table: metric, variant, ours, baseline, ratio, goal, PASS/BELOW/ABOVE."""
    header = ("metric", variant_header, "ours", baseline_header, "unit", "ratio", "goal", "")
    rows = [
        (
            r.metric,
            r.variant or "",
            _fmt(r.ours),
            _fmt(r.baseline),
            r.unit,
            f"{r.ratio:.1%}",
            r.goal_text(),
            r.status,
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    numeric = {2, 3, 5, 6}

    def line(row: Sequence[str]) -> str:
        cells = [
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    print()
    print(title)
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def write_results(name: str, records: Sequence[Record], directory: Path = RESULTS_DIR) -> Path:
    """Write ``<directory>/<name>.json`` atomically; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([r.to_json() for r in records], indent=2) + "\n")
    os.replace(tmp, path)
    return path


def profile(title: str, fn: Callable[[], object], top: int) -> None:
    """Run ``fn`` under cProfile and print the ``top`` functions by cumulative and own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\n--- profile: {title}, by {order} ---")
        body = text.getvalue()
        print(body[body.find("   ncalls") :].rstrip())


def finish(name: str, records: Sequence[Record], *, write: bool = True) -> None:
    """Write ``results/<name>.json`` (unless not ``write``), say where, name the goals missed."""
    if write:
        path = write_results(name, records)
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"\nresults written to {shown}")
    missed = [r for r in records if r.missed]
    if missed:
        print("goals missed: " + ", ".join(r.missed_text() for r in missed))
