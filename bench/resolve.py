"""Trust resolution: NIST PDTS path building, cold resolution beside plain pyhanko, warm rate.

What is measured (DESIGN.md 8: figures beside a baseline measured in the same run):

- ``pdts-pool`` and ``pdts-mirror``, one record per case of the NIST Path Discovery Test Suite
  (22 cases, ``../shared/conformance/pdts``): wall-clock seconds for ``PathBuilder.build`` to
  reach the expected verdict (checked) with the default ``SearchLimits``, a fresh builder each
  time. ``pool``: over a fresh ``CertificatePool`` (timed too) of every certificate of every
  ``.p7c`` bundle, every CRL of the mirror given; ``mirror``: through ``MirrorFetcher`` (AIA
  and SIA bundles and CRLs fetched from the mirror). The worst of ``--pdts-runs`` runs. Goal of
  the issue: every case under 2 seconds (absolute).
  Baseline (pool only; null where it did not finish): plain pyhanko-certvalidator building its
  own path from the same pool, ``CertificateValidator(leaf, validation_context=
  ValidationContext(trust_roots=[anchor], other_certs=pool, crls=crls, allow_fetching=False,
  moment=2018-01-01, revocation_mode="require"), pkix_params=PKIXValidationParams(
  initial_explicit_policy=False))``, ``asyncio.run(validator.async_validate_path())``, a fresh
  context each time, inputs parsed once per process before the clock starts. After all our
  figures, each case runs in a process of its own (``--jobs`` at a time) that an alarm ends
  after ``--baseline-timeout`` seconds of validation: finished or hung. The cases that finished
  are then timed again in one process, one after the other, worst of ``--pdts-runs`` (the
  parallel processes share the two cores). ``pdts-finished`` counts the cases each side
  finishes with the expected verdict.
- ``resolve-cold``: ``TrustResolver(config, cache=False).resolve(leaf, at=NOW, extra=...,
  crls=...)``, a fresh resolver per call, no fetcher: given the intermediates of the path the
  route validates and the CRLs a fetching builder gathers for it. On the linked homes of the
  trust tests (``tests.trust.linked``: German, Japanese and bridge homes, cross-certified with
  policy mappings), a Japanese person as seen by a German relying party: ``bridge`` (the
  relying party's own root, no trust lists: path DE root, bridge, JP root, JP identity CA,
  person), ``trust-list`` (no own roots: the JP root as the listed CA service) and
  ``both-routes`` (the full configuration: the resolver validates both and compares them).
  Baseline: plain pyhanko validating the same: ``CertificateValidator(leaf,
  validation_context=ValidationContext(trust_roots=anchors, other_certs=intermediates,
  crls=crls, allow_fetching=False, moment=NOW, revocation_mode="require"),
  pkix_params=PKIXValidationParams(user_initial_policy_set=<the German levels> (bridge) or
  {anyPolicy} (trust list), initial_explicit_policy=True))``, ``asyncio.run(
  validator.async_validate_path())``, a fresh context per call; for ``both-routes`` the two in
  turn, each over the union of both routes' certificates and CRLs, as ours gets. Every call,
  on either side, gets a person's certificate it has never seen (like the person's, issued by
  the JP identity CA with a serial of its own), parsed by its own library before the clock;
  the CA certificates and CRLs are parsed once and reused, as by a relying party resolving
  many identities. The resolver's path and pyhanko's are checked to be the same. Goal:
  baseline time / ours >= 0.8.
- ``resolve-warm``: a cached ``TrustResolver`` answering the same query again (the full
  configuration, both routes): ``fetcher`` when it was resolved through the homes' URLs (no
  ``extra``/``crls`` in the query), ``given`` when the query passes the intermediates and CRLs.
  Baseline: one raw ECDSA P-256 verification, ``issuer_key.verify(leaf.signature,
  leaf.tbs_certificate_bytes, ec.ECDSA(SHA256()))`` of the person's certificate by the
  JP identity CA. Goal: warm resolutions/s >= 0.5 x verifications/s.

Cold and warm figures: ours and the baseline take turns for ``--seconds``, a call (cold) or
about 2 ms of calls (warm) at a time; each figure is the median over its samples (the machine
is shared; its speed drifts).
Run from the project root: ``python -m bench.resolve`` (``--part`` for one part only);
``--profile`` adds a cProfile breakdown of a cold and a warm resolution (not used for the
figures).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/resolve.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as pv_errors
from pyhanko_certvalidator.policy_decl import PKIXValidationParams
from tests.conformance.pdts import PDTS, Pdts
from tests.conformance.pdts import verdict as pdts_verdict
from tests.homes import NOW
from tests.trust.linked import HomesFetcher, Linked, build_linked
from tests.trust.test_resolver import german_config

from bench._common import (
    PYHANKO_ANY_POLICY,
    NoBaseline,
    Paired,
    PlainValidation,
    Record,
    finish,
    in_ci,
    limit_record,
    machine_summary,
    print_table,
    profile,
    rate_record,
    stopwatch,
    time_record,
)
from trustbridge.trust.paths import (
    CertificatePool,
    FoundPath,
    MirrorFetcher,
    PathBuilder,
)
from trustbridge.trust.reference import GERMANY
from trustbridge.trust.resolver import Resolution, Route, TrustConfig, TrustResolver
from trustbridge.trust.validation import RevocationMode, ValidationParams

NAME = "resolve"
#: Goals of the issue.
GOAL_PDTS_S = 2.0
GOAL_COLD = 0.8
GOAL_WARM = 0.5
#: How asn1crypto, and so pyhanko, spells anyPolicy.
ANY_POLICY = PYHANKO_ANY_POLICY
GERMAN_LEVELS = frozenset(level.oid.dotted_string for level in GERMANY.levels)
PARTS = ("cold", "warm", "pdts")

PDTS_BASELINE_NAME = (
    "plain pyhanko-certvalidator {version} building its own path from the same pool: "
    "CertificateValidator(leaf, ValidationContext(trust_roots=[anchor], other_certs=pool, "
    "crls=all CRLs, allow_fetching=False, moment=2018-01-01, revocation_mode='require'), "
    "PKIXValidationParams(initial_explicit_policy=False)), asyncio.run(async_validate_path()); "
    "a fresh context per run; a process per case, ended after {timeout:g} s of validation "
    "(null: did not finish); the finished ones timed again in one process, worst of the runs"
)
COLD_BASELINE_NAME = (
    "plain pyhanko-certvalidator {version} validating the same: CertificateValidator(leaf, "
    "ValidationContext(trust_roots=anchors, other_certs=the path's intermediates, crls=the "
    "path's CRLs, allow_fetching=False, moment=NOW, revocation_mode='require'), "
    "PKIXValidationParams(user_initial_policy_set=German levels (bridge) or anyPolicy (trust "
    "list), initial_explicit_policy=True)), asyncio.run(async_validate_path()), a fresh "
    "context per call; both-routes: the two in turn over the union of both routes' inputs; "
    "a never-seen leaf per call on both sides, inputs parsed before the clock; median of "
    "calls taken in turns with ours"
)
WARM_BASELINE_NAME = (
    "cryptography {version}: raw ECDSA P-256 verification, issuer_key.verify(leaf.signature, "
    "leaf.tbs_certificate_bytes, ec.ECDSA(SHA256())), the person's certificate by its CA; "
    "median of samples taken in turns with ours"
)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _quiet_pyhanko() -> None:
    # pyhanko logs every failed CRL-issuer path with a traceback; PDTS has many by design.
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)


# -- NIST PDTS -----------------------------------------------------------------------------------


def run_pdts_ours(suite: Pdts, runs: int) -> dict[str, dict[str, float]]:
    """{case: {mode: worst seconds}}; raises where a verdict is not the expected one."""
    anchor = x509.load_der_x509_certificate(suite.anchor_der)
    certificates = [x509.load_der_x509_certificate(d) for d in suite.pool]
    base = ValidationParams(
        at=suite.at,
        require_explicit_policy=suite.explicit_policy,
        revocation=RevocationMode.REQUIRE,
    )
    pooled = replace(base, crls=suite.crls)
    mirror = MirrorFetcher(suite.root / "Hosts")
    times: dict[str, dict[str, float]] = {}
    for case in suite.cases:
        leaf = x509.load_der_x509_certificate(suite.leaf_der(case))
        worst = {"pool": 0.0, "mirror": 0.0}
        for _ in range(runs):
            for mode in ("pool", "mirror"):
                with stopwatch() as sw:
                    if mode == "pool":
                        builder = PathBuilder(anchors=[anchor], pool=CertificatePool(certificates))
                        outcome = pdts_verdict(builder, leaf, pooled)
                    else:
                        builder = PathBuilder(anchors=[anchor], fetcher=mirror)
                        outcome = pdts_verdict(builder, leaf, base)
                if outcome != case["expected"]:
                    raise RuntimeError(
                        f"PDTS {case['name']} ({mode}): {outcome}, expected {case['expected']}"
                    )
                worst[mode] = max(worst[mode], sw.seconds)
        times[case["name"]] = worst
    return times


def child_pdts_pyhanko(names: Sequence[str], *, runs: int, timeout: float) -> dict[str, Any]:
    """Cases through plain pyhanko from the pool, each ``runs`` times: {name: outcome}.

    Runs in a process of its own: a validation that has not finished after ``timeout``
    seconds ends the process (SIGALRM, default action), which the parent reads as a hang.
    """
    suite = Pdts.load()
    anchor = asn1_x509.Certificate.load(suite.anchor_der)
    pool = [asn1_x509.Certificate.load(d) for d in suite.pool]
    crls = [asn1_crl.CertificateList.load(d) for d in suite.crls]
    params = PKIXValidationParams(
        user_initial_policy_set=frozenset({ANY_POLICY}),
        initial_explicit_policy=suite.explicit_policy,
    )
    outcomes: dict[str, Any] = {}
    for name in names:
        leaf = asn1_x509.Certificate.load(suite.leaf_der(suite.case(name)))
        worst, verdict, error = 0.0, "", None
        for _ in range(runs):
            signal.setitimer(signal.ITIMER_REAL, timeout)
            with stopwatch() as sw:
                context = ValidationContext(
                    trust_roots=[anchor],
                    other_certs=pool,
                    crls=crls,
                    allow_fetching=False,
                    moment=suite.at,
                    revocation_mode="require",
                )
                validator = CertificateValidator(
                    leaf, validation_context=context, pkix_params=params
                )
                try:
                    asyncio.run(validator.async_validate_path())
                    verdict = "valid"
                except (pv_errors.PathError, pv_errors.ValidationError) as exc:
                    verdict, error = "invalid", f"{type(exc).__name__}: {exc}"
                except (ValueError, TypeError) as exc:  # input it cannot handle
                    verdict, error = "error", f"{type(exc).__name__}: {exc}"
            signal.setitimer(signal.ITIMER_REAL, 0)
            worst = max(worst, sw.seconds)
        outcomes[name] = {"verdict": verdict, "seconds": worst, "error": error}
    return outcomes


@dataclass(frozen=True)
class PlainOutcome:
    """What plain pyhanko did with one PDTS case: its verdict and time, or None (killed)."""

    verdict: str | None
    seconds: float | None
    error: str | None = None


def _pyhanko_child(names: Sequence[str], *, runs: int, timeout: float) -> dict[str, PlainOutcome]:
    """Run :func:`child_pdts_pyhanko` in a fresh interpreter; no outcomes where one hung."""
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "bench.resolve", "--child", "pdts-pyhanko"]
    command += [f"--case={n}" for n in names]
    command += ["--pdts-runs", str(runs), "--baseline-timeout", str(timeout)]
    try:
        done = subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            # A backstop only: the child's own alarm ends a hanging validation.
            timeout=len(names) * runs * timeout + 60,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        return {}
    if done.returncode == -signal.SIGALRM:
        return {}
    if done.returncode != 0:
        raise RuntimeError(f"plain pyhanko on PDTS failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        name: PlainOutcome(r["verdict"], float(r["seconds"]), r["error"])
        for name, r in report.items()
    }


def run_pdts_pyhanko(
    suite: Pdts, *, timeout: float, jobs: int, runs: int
) -> dict[str, PlainOutcome]:
    """Every case in a process of its own, ``jobs`` at a time, killed after ``timeout``; then
    the cases that finished once more, all in one process, one after the other, ``runs`` times
    each (their figures: the parallel processes share the machine's two cores)."""
    names = [c["name"] for c in suite.cases]

    def one(name: str) -> PlainOutcome:
        found = _pyhanko_child([name], runs=1, timeout=timeout)
        return found.get(name, PlainOutcome(None, None))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        first = dict(zip(names, pool.map(one, names), strict=True))
    finished = [n for n, o in first.items() if o.verdict is not None]
    timed = _pyhanko_child(finished, runs=runs, timeout=timeout) if finished else {}
    outcomes = {}
    for name, outcome in first.items():
        again = timed.get(name)
        if outcome.verdict is None or again is None or again.verdict != outcome.verdict:
            outcomes[name] = outcome if again is None else replace(outcome, seconds=None)
        else:
            outcomes[name] = again
    return outcomes


def pdts_records(
    suite: Pdts,
    ours: dict[str, dict[str, float]],
    plain: dict[str, PlainOutcome] | None,
    timeout: float,
) -> list[Record]:
    name = PDTS_BASELINE_NAME.format(version=_version("pyhanko-certvalidator"), timeout=timeout)
    records: list[Record] = []
    for mode in ("pool", "mirror"):
        for case in suite.cases:
            seconds = round(ours[case["name"]][mode], 4)
            outcome = plain.get(case["name"]) if plain is not None and mode == "pool" else None
            if (
                outcome is not None
                and outcome.verdict == case["expected"]
                and outcome.seconds is not None
            ):
                records.append(
                    limit_record(
                        f"pdts-{mode}",
                        unit="s",
                        ours=seconds,
                        baseline=round(outcome.seconds, 4),
                        baseline_name=name,
                        goal=GOAL_PDTS_S,
                        variant=case["name"],
                    )
                )
            else:
                records.append(
                    NoBaseline(
                        f"pdts-{mode}",
                        "s",
                        seconds,
                        math.nan,
                        name if mode == "pool" else "none (plain pyhanko is given no fetcher)",
                        math.nan,
                        GOAL_PDTS_S,
                        case["name"],
                        goal_kind="max",
                    )
                )
    if plain is not None:
        # Ours: all of them, or run_pdts_ours would have raised.
        finished = sum(1 for c in suite.cases if plain[c["name"]].verdict == c["expected"])
        if finished:
            records.append(
                rate_record(
                    "pdts-finished",
                    unit="cases",
                    ours=len(suite.cases),
                    baseline=finished,
                    baseline_name=name + "; cases with the expected verdict in time, pool",
                )
            )
        else:
            records.append(
                NoBaseline(
                    "pdts-finished",
                    "cases",
                    len(suite.cases),
                    math.nan,
                    name + "; no case finished",
                    math.nan,
                )
            )
    return records


def print_pdts(
    suite: Pdts, ours: dict[str, dict[str, float]], plain: dict[str, PlainOutcome] | None
) -> None:
    def plain_text(outcome: PlainOutcome | None, expected: str) -> str:
        if outcome is None:
            return "-"
        if outcome.verdict is None:
            return "killed"
        if outcome.verdict != expected:
            return f"wrong: {outcome.verdict}"
        return "?" if outcome.seconds is None else f"{outcome.seconds:.3f}"

    rows = []
    for case in suite.cases:
        mine = ours[case["name"]]
        outcome = plain.get(case["name"]) if plain is not None else None
        ratio = (
            f"{outcome.seconds / mine['pool']:.1f}x"
            if outcome is not None
            and outcome.seconds is not None
            and outcome.verdict == case["expected"]
            else "-"
        )
        worst = max(mine.values())
        rows.append(
            (
                case["name"],
                case["route"],
                case["expected"],
                f"{mine['pool']:.3f}",
                plain_text(outcome, case["expected"]),
                ratio,
                f"{mine['mirror']:.3f}",
                "PASS" if worst <= GOAL_PDTS_S else "ABOVE",
            )
        )
    header = ("case", "route", "expected", "pool s", "pyhanko s", "ratio", "mirror s", "< 2 s")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    print("\nNIST PDTS: our path builder (worst of the runs) and plain pyhanko, pool and mirror")
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print(
        f"slowest: pool {max(t['pool'] for t in ours.values()):.3f} s, "
        f"mirror {max(t['mirror'] for t in ours.values()):.3f} s (goal < {GOAL_PDTS_S:g} s)"
    )
    if plain is not None:
        killed = [n for n, o in plain.items() if o.verdict is None]
        wrong = [
            n
            for n, o in plain.items()
            if o.verdict is not None and o.verdict != suite.case(n)["expected"]
        ]
        print(
            f"plain pyhanko: {len(plain) - len(killed) - len(wrong)} of {len(plain)} cases "
            f"finished with the expected verdict, {len(killed)} killed at the timeout"
            + (f", {len(wrong)} wrong ({', '.join(wrong)})" if wrong else "")
        )
    sys.stdout.flush()


# -- the linked homes: cold and warm resolution -------------------------------------------------


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def fresh_leaves(world: Linked, count: int) -> list[x509.Certificate]:
    """Certificates like the Japanese person's, each with a serial of its own.

    Every cold resolution gets one never seen before, so that neither side profits from
    having met the identity already (our validator keeps conversions in process-wide caches
    keyed by DER; asn1crypto parses lazily and keeps what it parsed). The CA certificates and
    CRLs are the same in every call, as for a relying party resolving many identities.
    """
    template = world.jp_person
    key = world.jp.authority("ids").signer.private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(template.public_key())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return [
        builder.serial_number(x509.random_serial_number()).sign(key, hashes.SHA256())
        for _ in range(count)
    ]


@dataclass(frozen=True)
class ColdCase:
    """One cold-resolution comparison: our resolver's query and plain pyhanko's validations."""

    variant: str
    config: TrustConfig
    extra: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...]
    route: Route
    plain: tuple[PlainValidation, ...]

    def ours(self, leaf: x509.Certificate) -> Resolution:
        resolver = TrustResolver(self.config, cache=False)
        return resolver.resolve(leaf, at=NOW, extra=self.extra, crls=self.crls)

    def baseline(self, leaf: asn1_x509.Certificate) -> list[tuple[bytes, ...]]:
        return [p.run(leaf) for p in self.plain]


@dataclass(frozen=True)
class Found:
    """A route's path and CRLs as a fetching builder finds them (setup, not timed)."""

    anchors: tuple[x509.Certificate, ...]
    found: FoundPath
    policies: frozenset[str]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.found.path.certificates[1:-1]


def _listed_cas(config: TrustConfig) -> tuple[x509.Certificate, ...]:
    return tuple(
        c
        for t in config.trust_lists
        for p in t.providers
        for s in p.services
        for c in s.certificates
    )


def _find(world: Linked, anchors: Sequence[x509.Certificate], policies: frozenset[str]) -> Found:
    params = ValidationParams(
        at=NOW,
        acceptable_policies=policies,
        require_explicit_policy=True,
        revocation=RevocationMode.REQUIRE,
    )
    builder = PathBuilder(anchors=anchors, fetcher=HomesFetcher(world.homes))
    return Found(tuple(anchors), builder.find(world.jp_person, params), policies)


def _union(*groups: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def cold_cases(world: Linked) -> list[ColdCase]:
    full = german_config(world)
    bridge = _find(world, full.anchors, GERMAN_LEVELS)
    listed = _find(world, _listed_cas(full), frozenset())

    def plain(route: Found, others: Sequence[Any], crls: Sequence[bytes]) -> PlainValidation:
        return PlainValidation.of(
            anchors=route.anchors, others=others, crls=crls, policies=route.policies, moment=NOW
        )

    extra = _union(bridge.intermediates, listed.intermediates)
    crls = _union(bridge.found.crls, listed.found.crls)
    return [
        ColdCase(
            "bridge",
            german_config(world, trust_lists=()),
            bridge.intermediates,
            bridge.found.crls,
            Route.BRIDGE,
            (plain(bridge, bridge.intermediates, bridge.found.crls),),
        ),
        ColdCase(
            "trust-list",
            german_config(world, anchors=()),
            listed.intermediates,
            listed.found.crls,
            Route.TRUST_LIST,
            (plain(listed, listed.intermediates, listed.found.crls),),
        ),
        ColdCase(
            "both-routes",
            full,
            extra,
            crls,
            Route.BRIDGE,
            (plain(bridge, extra, crls), plain(listed, extra, crls)),
        ),
    ]


def check_cold(case: ColdCase, leaf: x509.Certificate) -> str:
    """Ours and the baseline validate the same path(s) (not timed); a line describing them."""
    result = case.ours(leaf)
    if result.route is not case.route:
        raise RuntimeError(f"{case.variant}: resolved by {result.route}, expected {case.route}")
    if case.variant == "both-routes" and any(o.error for o in result.routes):
        raise RuntimeError(f"both-routes: a route failed: {result.routes}")
    ours = tuple(c.public_bytes(Encoding.DER) for c in result.path)
    plain = case.baseline(_asn1(leaf))
    if plain[0] != ours:
        raise RuntimeError(f"{case.variant}: plain pyhanko validated another path than ours")
    names = " -> ".join(c.subject.rfc4514_string().split(",")[0] for c in result.path)
    return (
        f"{case.variant}: {len(result.path)} certificates ({names}), {len(case.crls)} CRLs, "
        f"{result.route}, reference level {result.reference_level}"
    )


def measure_cold(world: Linked, case: ColdCase, seconds: float) -> Paired:
    """Ours and the baseline, each call on a leaf neither has met."""
    # Enough never-seen leaves for every call: a probe's time per call, with a margin.
    probe = fresh_leaves(world, 6)
    with stopwatch() as sw:
        for leaf in probe[:3]:
            case.ours(leaf)
        for leaf in probe[3:]:
            case.baseline(_asn1(leaf))
    needed = int(seconds / (sw.seconds / 3) * 1.5) + 50
    ours_leaves = itertools.cycle(fresh_leaves(world, needed))
    plain_leaves = itertools.cycle([_asn1(c) for c in fresh_leaves(world, needed)])
    timed = Paired.measure(
        lambda: case.ours(next(ours_leaves)),
        lambda: case.baseline(next(plain_leaves)),
        seconds=seconds,
    )
    reused = max(timed.ours_calls, timed.baseline_calls) + 3 > needed
    print(
        f"  ours {timed.ours * 1000:.2f} ms ({timed.ours_calls} resolutions), plain "
        f"pyhanko {timed.baseline * 1000:.2f} ms ({timed.baseline_calls} validations), "
        + (f"leaves reused (only {needed} made)" if reused else "a new leaf each call")
    )
    return timed


def run_cold(world: Linked, seconds: float) -> list[Record]:
    name = COLD_BASELINE_NAME.format(version=_version("pyhanko-certvalidator"))
    records = []
    for case in cold_cases(world):
        print(check_cold(case, fresh_leaves(world, 1)[0]))
        timed = measure_cold(world, case, seconds)
        records.append(
            time_record(
                "resolve-cold",
                unit="ms",
                ours=round(timed.ours * 1000, 3),
                baseline=round(timed.baseline * 1000, 3),
                baseline_name=name,
                goal=None if case.variant == "both-routes" else GOAL_COLD,
                variant=case.variant,
            )
        )
    return records


def run_warm(world: Linked, seconds: float) -> list[Record]:
    leaf = world.jp_person
    config = german_config(world)
    issuer = world.jp.chain_of("ids")[0]
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise RuntimeError("the Japanese identity CA must hold a P-256 key")
    if not isinstance(leaf.signature_hash_algorithm, hashes.SHA256):
        raise RuntimeError("the person's certificate must be signed with ECDSA-SHA256")
    signature, data, algorithm = (
        leaf.signature,
        leaf.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),
    )

    def verify() -> None:
        key.verify(signature, data, algorithm)

    verify()
    bridge = _find(world, config.anchors, GERMAN_LEVELS)
    listed = _find(world, _listed_cas(config), frozenset())
    extra = _union(bridge.intermediates, listed.intermediates)
    crls = _union(bridge.found.crls, listed.found.crls)
    fetching = TrustResolver(config, fetcher=HomesFetcher(world.homes))
    given = TrustResolver(config)
    queries: dict[str, Callable[[], Resolution]] = {
        "fetcher": lambda: fetching.resolve(leaf, at=NOW),
        "given": lambda: given.resolve(leaf, at=NOW, extra=extra, crls=crls),
    }
    name = WARM_BASELINE_NAME.format(version=_version("cryptography"))
    records = []
    for variant, query in queries.items():
        first = query()
        if query() is not first:
            raise RuntimeError(f"warm/{variant}: the second resolution was not a cache hit")
        timed = Paired.measure(query, verify, seconds=seconds)
        print(
            f"warm/{variant}: {1 / timed.ours:,.0f} resolutions/s ({timed.ours * 1e6:.1f} us), "
            f"raw ECDSA P-256 verification {1 / timed.baseline:,.0f}/s "
            f"({timed.baseline * 1e6:.1f} us)"
        )
        records.append(
            rate_record(
                "resolve-warm",
                unit="ops/s",
                ours=round(1 / timed.ours, 1),
                baseline=round(1 / timed.baseline, 1),
                baseline_name=name,
                goal=GOAL_WARM,
                variant=variant,
            )
        )
    return records


# -- profile ------------------------------------------------------------------------------------


def profile_resolver(world: Linked, top: int) -> None:
    leaf = world.jp_person
    bridge = cold_cases(world)[0]
    leaves = fresh_leaves(world, 200)

    def cold() -> None:
        for fresh in leaves:
            bridge.ours(fresh)

    profile("cold resolution x200 (bridge, a new leaf each)", cold, top)
    resolver = TrustResolver(german_config(world), fetcher=HomesFetcher(world.homes))
    resolver.resolve(leaf, at=NOW)

    def warm() -> None:
        for _ in range(20_000):
            resolver.resolve(leaf, at=NOW)

    profile("warm resolution x20000 (fetcher)", warm, top)


# -- main ---------------------------------------------------------------------------------------


def run_linked(parts: set[str], args: argparse.Namespace) -> list[Record]:
    """Cold and warm resolution (and the profile) on the linked homes of the trust tests."""
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="tb-bench-resolve-") as tmp:
        with stopwatch() as sw:
            world = build_linked(Path(tmp))
        print(f"linked homes (DE, JP, bridge) ready in {sw.seconds:.1f} s")
        try:
            if "cold" in parts:
                records += run_cold(world, args.seconds)
            if "warm" in parts:
                records += run_warm(world, args.seconds)
            if args.profile:
                profile_resolver(world, args.top)
        finally:
            world.close()
    return records


def run_pdts(args: argparse.Namespace) -> list[Record]:
    """NIST PDTS through our path builder, and through plain pyhanko (from the pool)."""
    if not PDTS.is_dir():
        if in_ci():
            raise RuntimeError(f"the PDTS data is required under CI=true: not found at {PDTS}")
        print(f"SKIP PDTS: data not found at {PDTS}")
        return []
    suite = Pdts.load()
    with stopwatch() as sw:
        ours = run_pdts_ours(suite, args.pdts_runs)
    runs = f"{len(suite.cases)} cases x 2 modes x {args.pdts_runs} runs"
    print(f"PDTS, our path builder: {runs} in {sw.seconds:.1f} s")
    plain = None
    if not args.no_pdts_baseline:
        with stopwatch() as sw:
            plain = run_pdts_pyhanko(
                suite, timeout=args.baseline_timeout, jobs=args.jobs, runs=args.pdts_runs
            )
        print(f"PDTS through plain pyhanko: {sw.seconds:.1f} s")
    print_pdts(suite, ours, plain)
    return pdts_records(suite, ours, plain, args.baseline_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="seconds per cold or warm figure (both sides)"
    )
    parser.add_argument("--pdts-runs", type=int, default=3, help="runs per PDTS case and mode")
    parser.add_argument(
        "--baseline-timeout",
        type=float,
        default=10.0,
        help="seconds plain pyhanko gets per PDTS case before it is killed",
    )
    parser.add_argument("--jobs", type=int, default=2, help="plain pyhanko PDTS cases at a time")
    parser.add_argument(
        "--no-pdts-baseline", action="store_true", help="skip plain pyhanko on PDTS"
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="measure only this part (repeatable; default: all)",
    )
    parser.add_argument("--profile", action="store_true", help="add a cProfile breakdown")
    parser.add_argument("--top", type=int, default=30, help="functions per profile listing")
    parser.add_argument("--no-write", action="store_true", help=f"do not write results/{NAME}.json")
    parser.add_argument("--child", choices=("pdts-pyhanko",), help=argparse.SUPPRESS)
    parser.add_argument("--case", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _quiet_pyhanko()

    if args.child:
        outcomes = child_pdts_pyhanko(args.case, runs=args.pdts_runs, timeout=args.baseline_timeout)
        print(json.dumps(outcomes))
        return 0

    parts = set(args.part or PARTS)
    print(f"trust resolution benchmark; {machine_summary()}")
    records: list[Record] = []
    with stopwatch() as total:
        if parts & {"cold", "warm"} or args.profile:
            records += run_linked(parts, args)
        if "pdts" in parts:
            records += run_pdts(args)
    print(f"\nbenchmark ran {total.seconds:.0f} s")
    # The table: all but the PDTS cases, of which the slowest per mode stands for the others.
    summary = [r for r in records if not r.metric.startswith("pdts-") or r.variant is None]
    for mode in ("pdts-pool", "pdts-mirror"):
        cases = [r for r in records if r.metric == mode]
        if cases:
            summary.append(max(cases, key=lambda r: r.ours))
    print_table(
        summary,
        title="Trust resolution against plain pyhanko-certvalidator and raw ECDSA "
        "(PDTS: the slowest case per mode)",
    )
    finish(NAME, records, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
