"""One simulation run: grow the world country by country, measure every topology at every size,
run the event model on what was measured, and cost it all."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from trustbridge.errors import InputError
from trustbridge.sim.costs import CostModel, Recommendation, cost_breakdown, joining_cost, recommend
from trustbridge.sim.measure import (
    Measurement,
    Resolved,
    Results,
    measure_resolutions,
    sample_queries,
    store_diff,
    structure,
)
from trustbridge.sim.robustness import availability_figures, compromise_figures, revocation_figures
from trustbridge.sim.topologies import Deployment, Topology, closed_form
from trustbridge.sim.world import COUNTRY_CODES, World, WorldSpec

__all__ = [
    "DEFAULT_SIZES",
    "NullProgress",
    "Progress",
    "SimulationOptions",
    "SimulationResult",
    "run_simulation",
]

DEFAULT_SIZES = (2, 5, 10, 20, 50, 100)
QUICK_SIZES = (2, 3, 5)


class Progress(Protocol):
    """Where a run reports how far it is (the command shows progress bars)."""

    def begin(self, key: str, description: str, total: int) -> None: ...

    def advance(self, key: str, steps: int = 1) -> None: ...

    def end(self, key: str) -> None: ...


class NullProgress:
    """Reports nothing."""

    def begin(self, key: str, description: str, total: int) -> None:
        pass

    def advance(self, key: str, steps: int = 1) -> None:
        pass

    def end(self, key: str) -> None:
        pass


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    tsps_per_country: int = 2
    orgs_per_country: int = 5
    seed: int = 1
    #: At most this many identities are resolved per topology and size (a seeded sample,
    #: the same for every topology); all of them where there are no more.
    sample: int = 20
    #: Bridge-of-bridges: national roots per regional bridge.
    region_size: int = 10
    #: Cold resolutions per topology and size also tried with the default search limits.
    default_limit_trials: int = 3
    #: Revocations simulated per topology, size and kind (compromise recoveries: a fifth).
    event_runs: int = 200
    topologies: tuple[Topology, ...] = tuple(Topology)

    def __post_init__(self) -> None:
        if not self.sizes:
            raise InputError("give at least one number of countries")
        if list(self.sizes) != sorted(set(self.sizes)):
            object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))
        if self.sizes[0] < 2:
            raise InputError(
                f"a world needs at least 2 countries to link, not {self.sizes[0]}",
                hint="for example --countries 2,5,10",
            )
        if self.sizes[-1] >= len(COUNTRY_CODES):
            raise InputError(
                f"the simulation knows {len(COUNTRY_CODES)} countries and adds one more to "
                f"measure the cost of joining: at most {len(COUNTRY_CODES) - 1}, not "
                f"{self.sizes[-1]}"
            )
        if self.event_runs < 1:
            raise InputError(f"event runs must be at least 1, not {self.event_runs}")
        if self.sample < 1:
            raise InputError(f"the sample must hold at least 1 identity, not {self.sample}")
        if self.region_size < 1:
            raise InputError(f"the region size must be at least 1, not {self.region_size}")
        if not self.topologies:
            raise InputError("give at least one topology")

    @classmethod
    def quick(cls, *, seed: int = 1) -> SimulationOptions:
        """Small sizes for tests: 2, 3 and 5 countries, one TSP and two organizations each,
        every identity resolved, regions of two roots."""
        return cls(
            sizes=QUICK_SIZES,
            tsps_per_country=1,
            orgs_per_country=2,
            seed=seed,
            sample=1000,
            region_size=2,
            default_limit_trials=0,
            event_runs=40,
        )


@dataclass
class SimulationResult:
    """Everything a run measured and concluded."""

    options: SimulationOptions
    model: CostModel
    results: Results
    recommendations: list[Recommendation]
    seconds: float
    #: The resolutions of every topology at the largest size (for the report and the tests).
    resolved: dict[Topology, list[Resolved]] = field(default_factory=dict)
    #: The resolutions of every topology at every size.
    resolved_by_size: dict[tuple[Topology, int], list[Resolved]] = field(default_factory=dict)
    #: The deployments as they were grown (they hold one more country than the largest size).
    deployments: dict[Topology, Deployment] = field(default_factory=dict)


def run_simulation(
    options: SimulationOptions,
    model: CostModel | None = None,
    *,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SimulationResult:
    """Simulate every topology at every size of ``options`` with the parameters ``model``."""
    model = model or CostModel.default()
    progress = progress or NullProgress()
    started = clock()
    world = World(
        WorldSpec(
            seed=options.seed,
            tsps_per_country=options.tsps_per_country,
            orgs_per_country=options.orgs_per_country,
            crl_validity=timedelta(hours=model.number("operations.crl_validity_hours")),
        )
    )
    list_validity = timedelta(hours=model.number("operations.list_validity_hours"))
    deployments = {
        t: Deployment(t, world, region_size=options.region_size, list_validity=list_validity)
        for t in options.topologies
    }
    results = Results()
    resolved_by_size: dict[tuple[Topology, int], list[Resolved]] = {}
    build = dict.fromkeys(options.topologies, 0.0)
    joined = 0
    progress.begin("sizes", "sizes", len(options.sizes))
    for size in options.sizes:
        progress.begin("build", f"{size} countries: building PKIs and links", size - joined)
        while joined < size:
            _join(world, deployments, joined, build, clock)
            joined += 1
            progress.advance("build")
        progress.end("build")
        queries, sampled = sample_queries(
            world.countries(size), seed=options.seed, cap=options.sample
        )
        total_identities = size * options.orgs_per_country
        sample_note = (
            f"a seeded sample of {len(queries)} of {total_identities} identities"
            if sampled
            else f"all {total_identities} identities"
        )
        results.add(
            Measurement("", size, "countries", size, "countries"),
            Measurement("", size, "tsps_per_country", options.tsps_per_country, "TSPs"),
            Measurement("", size, "orgs_per_country", options.orgs_per_country, "identities"),
            Measurement("", size, "identities_sampled", len(queries), "identities", sample_note),
            Measurement("", size, "sampled", 1 if sampled else 0, "flag", sample_note),
        )
        progress.begin(
            "resolve", f"{size} countries: resolving identities", len(queries) * len(deployments)
        )
        stores = {}
        for t, d in deployments.items():
            store = d.store()
            stores[t] = store
            for metric, (value, unit) in structure(d, store).items():
                results.add(Measurement(t.value, size, metric, value, unit))
            form = closed_form(t, size, region_size=options.region_size)
            results.add(
                Measurement(
                    t.value,
                    size,
                    "closed_form_cross_certificates",
                    form.cross_certificates,
                    "certificates",
                    _FORMULAS[t],
                ),
                Measurement(
                    t.value,
                    size,
                    "build_seconds",
                    build[t],
                    "s",
                    "linking only; the national PKIs are made once for all topologies",
                ),
            )
            resolved, figures = measure_resolutions(
                d,
                queries,
                store,
                default_limit_trials=options.default_limit_trials,
                advance=lambda: progress.advance("resolve"),
            )
            resolved_by_size[(t, size)] = resolved
            for metric, (value, unit) in figures.items():
                note = sample_note if metric.startswith(("resolve_", "path_", "rp_fetch")) else ""
                results.add(Measurement(t.value, size, metric, value, unit, note))
        progress.end("resolve")
        progress.begin("events", f"{size} countries: event model", len(deployments))
        for t, d in deployments.items():
            resolved = resolved_by_size[(t, size)]
            for modelled in (
                revocation_figures(d, resolved, model, seed=options.seed, runs=options.event_runs),
                availability_figures(d, resolved, model, seed=options.seed),
                compromise_figures(
                    d, model, seed=options.seed, runs=max(5, options.event_runs // 5)
                ),
            ):
                for metric, (value, unit, note) in modelled.items():
                    results.add(Measurement(t.value, size, metric, value, unit, note))
            results.extend(_derived(t, size, results))
            progress.advance("events")
        progress.end("events")
        _add_one_more(world, deployments, stores, results, size, joined, clock)
        joined += 1
        progress.advance("sizes")
    progress.end("sizes")
    table = results.table()
    for (topology, size), values in sorted(table.items()):
        breakdown = cost_breakdown(values, model, topology=topology, countries=size)
        for component, value in breakdown.components.items():
            results.add(
                Measurement(
                    topology,
                    size,
                    f"cost_{component.replace(' ', '_')}",
                    value,
                    f"{breakdown.currency}/year",
                )
            )
        results.add(
            Measurement(
                topology, size, "cost_total", breakdown.total, f"{breakdown.currency}/year"
            ),
            Measurement(
                topology,
                size,
                "cost_per_participant",
                breakdown.per_participant,
                f"{breakdown.currency}/year",
                "total / countries",
            ),
            Measurement(
                topology,
                size,
                "cost_join_one_time",
                joining_cost(values, model),
                breakdown.currency,
                "agreements, link certificates, ceremonies and migration of one more country",
            ),
        )
    recommendations = recommend(results.table(), model)
    for r in recommendations:
        results.add(
            Measurement(
                "",
                r.countries,
                "recommended_cost_per_participant",
                r.per_participant,
                f"{model.get('currency')}/year",
                f"recommended: {r.topology}",
            )
        )
    seconds = clock() - started
    results.add(Measurement("", options.sizes[-1], "run_seconds", seconds, "s"))
    largest = options.sizes[-1]
    return SimulationResult(
        options=options,
        model=model,
        results=results,
        recommendations=recommendations,
        seconds=seconds,
        resolved={t: resolved_by_size[(t, largest)] for t in options.topologies},
        resolved_by_size=resolved_by_size,
        deployments=deployments,
    )


_FORMULAS = {
    Topology.GLOBAL_ROOT: "0",
    Topology.MESH: "n(n-1)",
    Topology.HUB: "2n",
    Topology.BRIDGE_OF_BRIDGES: "2n + 2*ceil(n/s), s = region size",
    Topology.GROUP: "0 (n trust lists + 1 LOTL)",
    Topology.HYBRID: "2n (and n trust lists + 1 LOTL)",
}


def _derived(topology: Topology, size: int, results: Results) -> list[Measurement]:
    """Figures made of others: availability with the central host down, links to maintain,
    the worst compromise."""
    values = results.table()[(topology.value, size)]
    links = values["link_certificates"] + values["signed_lists"]
    worst = max(
        (
            k.removeprefix("compromise_").removesuffix("_relationship_share")
            for k in values
            if k.startswith("compromise_") and k.endswith("_relationship_share")
        ),
        key=lambda kind: (
            values[f"compromise_{kind}_relationship_share"],
            values[f"compromise_{kind}_recovery_days"],
        ),
    )
    central = values.get("availability_bridge_down", 1.0)
    central_note = "the bridge, top bridge or global root's host down"
    if topology is Topology.GROUP:
        central = values.get("availability_lotl_host_down", 1.0)
        central_note = "the LOTL host down"
    elif topology is Topology.MESH:
        central_note = "a mesh has no central host"
    return [
        Measurement(
            topology.value, size, "availability_central_down", central, "share", central_note
        ),
        Measurement(
            topology.value,
            size,
            "links_to_maintain",
            links,
            "artifacts",
            "cross-certificates (or certificates of national CAs by the global root) "
            "and signed lists",
        ),
        Measurement(
            topology.value,
            size,
            "worst_compromise_share",
            values[f"compromise_{worst}_relationship_share"],
            "share",
            f"the worst single-key compromise: {worst}",
        ),
        Measurement(
            topology.value,
            size,
            "worst_compromise_recovery_days",
            values[f"compromise_{worst}_recovery_days"],
            "days",
            f"the worst single-key compromise: {worst}",
        ),
    ]


def _join(
    world: World,
    deployments: dict[Topology, Deployment],
    index: int,
    build: dict[Topology, float],
    clock: Callable[[], float],
) -> dict[Topology, float]:
    country = world.country(index)
    spent = {}
    for t, d in deployments.items():
        begun = clock()
        d.add(country)
        spent[t] = clock() - begun
        build[t] += spent[t]
    return spent


def _add_one_more(
    world: World,
    deployments: dict[Topology, Deployment],
    stores: dict[Topology, dict[str, bytes]],
    results: Results,
    size: int,
    index: int,
    clock: Callable[[], float],
) -> None:
    """Add country ``index`` to every deployment and measure what that took."""
    before = {t: (len(d.links), len(d.agreements), len(d.lists)) for t, d in deployments.items()}
    begun = clock()
    world.country(index)
    results.add(
        Measurement(
            "",
            size,
            "add_country_pki_ms",
            (clock() - begun) * 1000,
            "ms",
            "the new country's own PKI, for every topology",
        )
    )
    spent = _join(world, deployments, index, dict.fromkeys(deployments, 0.0), clock)
    for t, d in deployments.items():
        links, agreements, _ = before[t]
        after = d.store()
        new, changed, published, hosts = store_diff(stores[t], after)
        rp_bytes = 0
        if d.lotl is not None:
            rp_bytes = len(d.lotl[1]) + len(d.lists[d.countries[-1].code][1])
        for metric, value, unit in (
            ("add_country_cross_certificates", len(d.links) - links, "certificates"),
            ("add_country_agreements", len(d.agreements) - agreements, "agreements"),
            ("add_country_urls_new", new, "URLs"),
            ("add_country_urls_changed", changed, "URLs"),
            ("add_country_bytes_published", published, "bytes"),
            ("add_country_hosts_publishing", hosts, "hosts"),
            ("add_country_rp_bytes", rp_bytes, "bytes"),
            ("add_country_build_ms", spent[t] * 1000, "ms"),
        ):
            results.add(
                Measurement(
                    t.value, size, metric, value, unit, f"country {index + 1} joining {size}"
                )
            )


def sizes_of(text: str) -> tuple[int, ...]:
    """``2,5,10`` -> (2, 5, 10); an error that names the bad part otherwise."""
    sizes: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            sizes.append(int(part))
        except ValueError:
            raise InputError(
                f"--countries {text!r}: {part!r} is not a whole number",
                hint="give sizes as a comma-separated list, for example 2,5,10",
            ) from None
    if not sizes:
        raise InputError(f"--countries {text!r} names no size", hint="for example 2,5,10")
    return tuple(sizes)
