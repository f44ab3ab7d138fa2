"""Trust topologies at scale: the default ``trustbridge simulate`` run, timed, and resolution
through a bridge against plain pyhanko-certvalidator on the same path.

What is measured (DESIGN.md 8: figures beside a baseline measured in the same run):

- ``simulate-run``: wall-clock seconds of the default run (``SimulationOptions()``: 2, 5, 10,
  20, 50 and 100 countries, 2 TSPs and 5 identities each, 20 identities resolved per
  topology and size, the shipped ``costs.yaml``), report and CSV written to a temporary
  folder. Goal of the issue: at most 600 s on the 2-core machine (absolute). No baseline.
- ``resolve-warm-bridge`` and ``resolve-cold-bridge``: in the run's hub topology at its
  largest size, a relying party of the first country resolving identities of other countries
  through the bridge (path: own root, the bridge's cross-certificate, the holder's root, the
  TSP's CA, the identity). Warm: the resolver's cached answer
  (``TrustResolver.resolve(leaf, at=...)`` again on the resolver that resolved it); cold: a
  fresh ``TrustResolver`` whose fetcher answers from the published artifacts (in memory),
  building the path and gathering CRLs itself. Baseline: plain pyhanko-certvalidator
  validating the same path directly, ``CertificateValidator(leaf,
  validation_context=ValidationContext(trust_roots=[anchor], other_certs=<the path's
  intermediates>, crls=<the path's CRLs>, allow_fetching=False, moment=<the same time>,
  revocation_mode="require"), pkix_params=PKIXValidationParams(user_initial_policy_set=<the
  relying party's levels>, initial_explicit_policy=True))``,
  ``asyncio.run(validator.async_validate_path())``, a fresh context per call, inputs parsed
  before the clock; it is given the path, ours has to find it. Milliseconds per identity,
  medians over the identities and over calls taken in turns; ratio = baseline / ours. No goal.

Run from the project root: ``python -m bench.simulate`` (``--countries 2,5,10`` for a shorter
run, ``--seconds`` for the resolution timing, ``--no-write``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/simulate.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench._common import (
    NoBaseline,
    Paired,
    PlainValidation,
    Record,
    finish,
    machine_summary,
    print_table,
    stopwatch,
    time_record,
)
from trustbridge.sim import (
    CostModel,
    SimulationOptions,
    SimulationResult,
    Topology,
    run_simulation,
    write_outputs,
)
from trustbridge.sim.measure import StoreFetcher, path_crl_urls
from trustbridge.sim.run import sizes_of
from trustbridge.sim.world import RESOLVE_AT
from trustbridge.trust.resolver import TrustResolver

NAME = "simulate"
GOAL_RUN_S = 600.0
IDENTITIES = 8

BASELINE_NAME = (
    "plain pyhanko-certvalidator {version} validating the same path directly: "
    "CertificateValidator(leaf, validation_context=ValidationContext(trust_roots=[anchor], "
    "other_certs=the path's intermediates, crls=the path's CRLs, allow_fetching=False, "
    "moment=the same time, revocation_mode='require'), pkix_params=PKIXValidationParams("
    "user_initial_policy_set=the relying party's levels, initial_explicit_policy=True)), "
    "asyncio.run(validator.async_validate_path()), a fresh context per call, inputs parsed "
    "before the clock; median over {count} identities of calls taken in turns with ours"
)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def resolution_records(result: SimulationResult, *, seconds: float) -> list[Record]:
    """Warm and cold resolution through the hub's bridge against plain pyhanko."""
    hub = result.deployments[Topology.HUB]
    size = result.options.sizes[-1]
    countries = hub.countries[:size]
    relying = countries[0]
    config = hub.relying_party(relying).config
    store = hub.store()
    holders = [o for c in countries[1:] for o in c.organizations][: IDENTITIES * 7 : 7]
    levels = frozenset(lv.oid.dotted_string for lv in relying.scheme.levels)
    warm: list[tuple[float, float]] = []
    cold: list[tuple[float, float]] = []
    for organization in holders:
        leaf = organization.certificate
        resolver = TrustResolver(config, fetcher=StoreFetcher(store))
        resolution = resolver.resolve(leaf, at=RESOLVE_AT)
        assert "Industrial Bridge CA" in resolution.path[1].subject.rfc4514_string()
        plain = PlainValidation.of(
            anchors=resolution.path[:1],
            others=resolution.path[1:-1],
            crls=[store[u] for u in path_crl_urls(resolution.path)],
            policies=levels,
            moment=RESOLVE_AT,
        )
        leaf_asn1 = asn1_x509.Certificate.load(leaf.public_bytes(Encoding.DER))

        def pyhanko(plain: PlainValidation = plain, leaf: Any = leaf_asn1) -> None:
            plain.run(leaf)

        def ours_warm(resolver: TrustResolver = resolver, leaf: Any = leaf) -> None:
            resolver.resolve(leaf, at=RESOLVE_AT)

        def ours_cold(leaf: Any = leaf) -> None:
            TrustResolver(config, fetcher=StoreFetcher(store)).resolve(leaf, at=RESOLVE_AT)

        per = seconds / max(len(holders), 1) / 2
        for pairs, call in ((warm, ours_warm), (cold, ours_cold)):
            timed = Paired.measure(call, pyhanko, seconds=per)
            pairs.append((timed.ours, timed.baseline))
    name = BASELINE_NAME.format(version=_version("pyhanko-certvalidator"), count=len(holders))
    records = []
    for metric, pairs in (("resolve-warm-bridge", warm), ("resolve-cold-bridge", cold)):
        ours = statistics.median(p[0] for p in pairs) * 1000
        baseline = statistics.median(p[1] for p in pairs) * 1000
        records.append(
            time_record(
                metric,
                unit="ms",
                ours=round(ours, 4),
                baseline=round(baseline, 4),
                baseline_name=name,
                variant=f"hub-{size}",
            )
        )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--countries", default=None, help="sizes to simulate (default: the command's default)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="time for the resolution comparison"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not write results/{NAME}.json")
    args = parser.parse_args(argv)
    options = SimulationOptions(seed=args.seed)
    if args.countries:
        options = replace(options, sizes=sizes_of(args.countries))
    print(
        f"simulate benchmark: {', '.join(str(s) for s in options.sizes)} countries, "
        f"seed {options.seed}; {machine_summary()}"
    )
    with tempfile.TemporaryDirectory(prefix="tb-bench-simulate-") as tmp, stopwatch() as sw:
        result = run_simulation(options, CostModel.default())
        write_outputs(result, Path(tmp))
    run = round(sw.seconds, 1)
    records: list[Record] = [
        NoBaseline(
            "simulate-run",
            "s",
            run,
            math.nan,
            "none: the issue sets an absolute limit",
            math.nan,
            GOAL_RUN_S,
            variant="default" if not args.countries else args.countries,
            goal_kind="max",
        )
    ]
    records += resolution_records(result, seconds=args.seconds)
    for r in result.recommendations:
        print(f"  {r.countries:>4} countries: recommended {r.topology}")
    print_table(records, title="trustbridge simulate: run time and resolution through a bridge")
    finish(NAME, records, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
