"""The conclusions of a run, computed from its measurements and the parameters.

Nothing here is written in advance: which topology is recommended, where each construction
wins, and the answers to the paper's questions all follow from the figures (change a cost
parameter, and they change with it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trustbridge.sim._format import money, quantity
from trustbridge.sim.costs import (
    CostBreakdown,
    CostModel,
    Recommendation,
    cost_breakdown,
    recommend,
)
from trustbridge.sim.measure import Results
from trustbridge.sim.topologies import Topology

__all__ = [
    "Answer",
    "Conclusions",
    "Win",
    "conclude",
    "scaling_exponent",
]


@dataclass(frozen=True)
class Win:
    """Where one construction is best: a criterion, the winner, and its figure."""

    criterion: str
    topology: str
    value: str


@dataclass(frozen=True)
class Answer:
    """One question of the paper's problem outline, answered."""

    question: str
    how: str
    evidence: tuple[str, ...]
    verdict: str


@dataclass(frozen=True)
class RobustnessRow:
    topology: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Conclusions:
    world: int
    recommendations: tuple[Recommendation, ...]
    #: The recommended design for the largest world simulated.
    design: str
    #: Sentences explaining the recommendation for the largest world.
    design_reasons: tuple[str, ...]
    #: Per topology, the sizes at which it was the cheapest.
    cheapest_at: Mapping[str, tuple[int, ...]]
    wins: tuple[Win, ...]
    answers: tuple[Answer, ...]
    robustness_header: tuple[str, ...]
    robustness: tuple[RobustnessRow, ...]


def scaling_exponent(points: Sequence[tuple[int, float]]) -> float | None:
    """The slope b of log(value) over log(countries) (value ~ n^b), least squares over the
    sizes of 5 countries and more (all where fewer than two), values above zero only."""
    usable = [(n, v) for n, v in points if v > 0]
    large = [(n, v) for n, v in usable if n >= 5]
    usable = large if len(large) >= 2 else usable
    if len(usable) < 2:
        return None
    xs = [math.log(n) for n, _ in usable]
    ys = [math.log(v) for _, v in usable]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def _exponent(results: Results, topology: str, metric: str) -> str:
    b = scaling_exponent(results.series(topology, metric))
    return "-" if b is None else f"n^{b:.2f}"


def conclude(results: Results, model: CostModel) -> Conclusions:
    """What the figures say, for the sizes and topologies of ``results``."""
    table = results.table()
    recommendations = recommend(table, model)
    currency = str(model.get("currency"))
    sizes = sorted({n for _, n in table})
    world = sizes[-1]
    topologies = [t.value for t in Topology if (t.value, world) in table]
    at = {t: table[(t, world)] for t in topologies}
    costs = {t: cost_breakdown(at[t], model, topology=t, countries=world) for t in topologies}
    last = recommendations[-1]
    design = last.topology
    reasons = _design_reasons(last, costs, currency, model)
    cheapest_at: dict[str, tuple[int, ...]] = dict.fromkeys(topologies, ())
    for r in recommendations:
        cheapest_at[r.topology] = (*cheapest_at.get(r.topology, ()), r.countries)
    wins = _wins(at, costs, currency)
    answers = (
        _global_root(results, at, costs, last, world, currency, model),
        _bilateral(results, table, recommendations, at, costs, world, currency),
        _robust(results, at, world),
        _levels(at, world),
    )
    header, rows = _robustness_rows(results, at, topologies, world)
    return Conclusions(
        world=world,
        recommendations=tuple(recommendations),
        design=design,
        design_reasons=reasons,
        cheapest_at=cheapest_at,
        wins=wins,
        answers=answers,
        robustness_header=header,
        robustness=rows,
    )


def _design_reasons(
    last: Recommendation, costs: Mapping[str, CostBreakdown], currency: str, model: CostModel
) -> tuple[str, ...]:
    best = costs[last.topology]
    out = [
        f"{last.topology} costs {money(last.per_participant, currency)} per country and year "
        f"at {last.countries} countries, the least of the topologies that meet the requirements."
    ]
    others = [(t, c) for t, c in last.ranking if t != last.topology and t not in last.excluded]
    if others:
        runner, runner_cost = others[0]
        other = costs[runner]
        deltas = sorted(
            ((other.components[k] - best.components[k]) / last.countries, k)
            for k in best.components
        )
        saving = [f"{k} ({money(d, currency)})" for d, k in reversed(deltas) if d > 0][:3]
        extra = [f"{k} ({money(-d, currency)})" for d, k in deltas if d < 0][:2]
        text = (
            f"The runner-up, {runner}, costs {money(runner_cost, currency)} "
            f"({runner_cost / last.per_participant - 1:+.0%}); per country {last.topology} "
            f"saves on {', '.join(saving) or 'nothing'}"
        )
        text += f" and spends more on {', '.join(extra)}." if extra else "."
        out.append(text)
    for topology, miss in sorted(last.excluded.items()):
        out.append(f"{topology} is left out: {miss}.")
    if last.note:
        out.append(last.note + ".")
    if model.get("requirements.require_service_recognition"):
        out.append("Trust services (TSAs, CABs, auditors) must be recognized by signed lists.")
    return tuple(out)


def _wins(
    at: Mapping[str, Mapping[str, float]], costs: Mapping[str, CostBreakdown], currency: str
) -> tuple[Win, ...]:
    def best(criterion: str, metric: str, unit: str, *, high: bool = False) -> Win | None:
        found = [(v[metric], t) for t, v in at.items() if metric in v]
        if not found:
            return None
        value, topology = (max if high else min)(found, key=lambda item: (item[0], item[1]))
        ties = [t for v, t in found if v == value]
        return Win(
            criterion,
            " = ".join(sorted(ties)) if len(ties) > 1 else topology,
            quantity(value, unit),
        )

    def per_participant(t: str) -> float:
        return costs[t].per_participant

    cheapest = min(at, key=lambda t: (per_participant(t), t))
    wins = [Win("lowest cost per country", cheapest, money(per_participant(cheapest), currency))]
    candidates = [
        best(
            "fewest cross-certificates and signed lists to maintain",
            "links_to_maintain",
            "artifacts",
        ),
        best("fewest agreements", "agreements", "agreements"),
        best("least a relying party holds", "rp_hold_bytes", "bytes"),
        best("least fetched per cold resolution", "rp_fetch_bytes_per_resolution", "bytes"),
        best("fastest cold resolution", "resolve_cold_ms", "ms"),
        best("shortest paths", "path_length_max", "certificates"),
        best(
            "highest availability under random failures", "availability_random", "share", high=True
        ),
        best(
            "highest availability with its central host down",
            "availability_central_down",
            "share",
            high=True,
        ),
        best(
            "fastest revocation of an identity (95th percentile)",
            "revocation_identity_p95_h",
            "hours",
        ),
        best("fastest cut-off of a country (95th percentile)", "revocation_link_p95_h", "hours"),
        best("smallest worst-case compromise", "worst_compromise_share", "share"),
        best(
            "fastest recovery from the worst compromise", "worst_compromise_recovery_days", "days"
        ),
        best("cheapest to join (one-time)", "cost_join_one_time", currency),
    ]
    wins += [w for w in candidates if w is not None]
    return tuple(wins)


def _global_root(
    results: Results,
    at: Mapping[str, Mapping[str, float]],
    costs: Mapping[str, CostBreakdown],
    last: Recommendation,
    world: int,
    currency: str,
    model: CostModel,
) -> Answer:
    question = (
        "Is a single overarching certificate-based process feasible and economical worldwide?"
    )
    how = (
        "global-root: one root CA for the world; every national root becomes its subordinate "
        "and every identity is re-issued under the one policy (the reference levels)."
    )
    g = at.get(Topology.GLOBAL_ROOT.value)
    if g is None:
        return Answer(question, how, ("global-root was not simulated",), "not measured")
    cost = costs[Topology.GLOBAL_ROOT.value]
    feasible = g.get("identities_resolved") == g.get("identities_checked") and g.get(
        "path_length_max", 99
    ) <= model.number("requirements.max_path_length")
    ratio = cost.per_participant / last.per_participant
    migration = cost.components.get("migration", 0.0) / cost.total if cost.total else 0.0
    evidence = (
        f"{g['identities_resolved']:.0f} of {g['identities_checked']:.0f} identities resolved "
        f"at {world} countries, paths of {g['path_length_max']:.0f} certificates, cold "
        f"{g['resolve_cold_ms']:.1f} ms "
        f"(scales {_exponent(results, 'global-root', 'resolve_cold_ms')}).",
        f"Cost {money(cost.per_participant, currency)} per country and year, "
        f"{ratio:.2f}x the recommended {last.topology}; {migration:.0%} of it is the migration "
        "(harmonisation.per_country, harmonisation.reissue_per_identity).",
        "A compromised global root affects "
        f"{g.get('compromise_central_relationship_share', 0):.0%} of all relationships; every "
        "country's relying parties re-pin "
        f"({g.get('compromise_central_anchor_updates', 0):.0f} countries), recovery "
        f"{g.get('compromise_central_recovery_days', 0):.0f} days.",
        f"While the global root's host is down for {model.number('operations.outage_hours'):g} h, "
        f"{g.get('availability_central_down', 1):.1%} of resolution time succeeds.",
    )
    economical = last.topology == Topology.GLOBAL_ROOT.value or ratio <= 1.1
    verdict = (
        f"Feasible: {'yes' if feasible else 'no'}. Economical: "
        + ("yes" if economical else f"no, {ratio:.1f}x the cost of {last.topology}")
        + f" at {world} countries with these parameters."
    )
    return Answer(question, how, evidence, verdict)


def _bilateral(
    results: Results,
    table: Mapping[tuple[str, int], Mapping[str, float]],
    recommendations: Sequence[Recommendation],
    at: Mapping[str, Mapping[str, float]],
    costs: Mapping[str, CostBreakdown],
    world: int,
    currency: str,
) -> Answer:
    question = (
        "Is it enough to link national procedures bilaterally through bridges, or are group "
        "constructions required?"
    )
    how = (
        "mesh: every pair of national roots cross-certifies both ways (bilateral bridging), "
        "against multilateral constructions: one bridge CA for all (hub), regional bridges "
        "under a top bridge (bridge-of-bridges), and the group construction of the paper, "
        "trust lists with a LOTL (group), alone or beside a bridge (hybrid)."
    )
    m = at.get(Topology.MESH.value)
    if m is None:
        return Answer(question, how, ("mesh was not simulated",), "not measured")
    enough = [r.countries for r in recommendations if r.topology == Topology.MESH.value]
    hub = at.get(Topology.HUB.value, {})
    mesh_cost = costs[Topology.MESH.value]
    last = recommendations[-1]
    evidence = [
        f"At {world} countries the mesh needs {m['cross_certificates']:.0f} cross-certificates "
        f"(n(n-1)) and {m['agreements']:.0f} agreements (n(n-1)/2); the hub "
        f"{hub.get('cross_certificates', math.nan):.0f} and {hub.get('agreements', math.nan):.0f}.",
        f"A cold resolution through the mesh takes {m['resolve_cold_ms']:.0f} ms and fetches "
        f"{quantity(m['rp_fetch_bytes_per_resolution'], 'bytes')} "
        f"(scales {_exponent(results, 'mesh', 'rp_fetch_bytes_per_resolution')}): every root's "
        f"bundle holds n-1 cross-certificates the path builder tries; the hub: "
        f"{hub.get('resolve_cold_ms', math.nan):.0f} ms, "
        f"{quantity(hub.get('rp_fetch_bytes_per_resolution', 0), 'bytes')}.",
        (
            f"{m.get('default_limits_failures', 0):.0f} of "
            f"{m.get('default_limits_checked', 0):.0f} mesh resolutions tried with the "
            f"resolver's default search limits (SearchLimits()) failed at {world} countries."
            if m.get("default_limits_checked")
            else "The resolver's default search limits were not tried in this run."
        ),
        f"Mesh cost {money(mesh_cost.per_participant, currency)} per country and year, "
        f"{mesh_cost.per_participant / last.per_participant:.1f}x the recommended {last.topology}.",
        "A mesh gives no common reference level: "
        f"{m.get('reference_level_share', 0):.0%} of its resolutions name one "
        f"(the others: {_best_reference(at):.0%}).",
    ]
    listed = [t for t in (Topology.GROUP.value, Topology.HYBRID.value) if t in costs]
    if listed:
        cheapest_listed = min(listed, key=lambda t: (costs[t].per_participant, t))
        ratio = costs[cheapest_listed].per_participant / last.per_participant
        evidence.append(
            f"Of the list-based group constructions, {cheapest_listed} costs {ratio:.2f}x the "
            f"recommended at {world} countries; they alone recognize trust services (CABs, "
            "TSAs) with status and scope, which requirements.require_service_recognition asks."
        )
    if enough:
        sizes = ", ".join(str(n) for n in enough)
        beyond = [r for r in recommendations if r.countries > max(enough)]
        verdict = f"Bilateral bridging is the cheapest at {sizes} countries"
        if beyond:
            verdict += (
                f"; from {beyond[0].countries} countries a multilateral construction "
                f"({beyond[0].topology}: {_kind(beyond[0].topology)}) is cheaper, and at "
                f"{world} countries {last.topology} is recommended."
            )
        else:
            verdict += "; it stays the cheapest at every size simulated."
    else:
        verdict = (
            "Bilateral bridging is the cheapest at no size simulated; a multilateral "
            f"construction is needed (at {world} countries: {last.topology}, "
            f"{_kind(last.topology)})."
        )
    if last.topology in (Topology.GROUP.value, Topology.HYBRID.value):
        verdict += " The group construction (trust lists and a LOTL) is part of the answer."
    elif listed:
        verdict += (
            " Group constructions with lists are not needed for identities at these costs; "
            "they are where trust services must be recognized."
        )
    return Answer(question, how, tuple(evidence), verdict)


def _kind(topology: str) -> str:
    return {
        Topology.GLOBAL_ROOT.value: "a single global root",
        Topology.MESH.value: "bilateral cross-certification",
        Topology.HUB.value: "a multilateral bridge CA",
        Topology.BRIDGE_OF_BRIDGES.value: "regional bridges under a top bridge",
        Topology.GROUP.value: "the group construction: trust lists and a LOTL",
        Topology.HYBRID.value: "a bridge CA with trust lists beside it",
    }[topology]


def _best_reference(at: Mapping[str, Mapping[str, float]]) -> float:
    return max(
        (v.get("reference_level_share", 0.0) for t, v in at.items() if t != "mesh"), default=0.0
    )


def _robust(results: Results, at: Mapping[str, Mapping[str, float]], world: int) -> Answer:
    question = "How robust and scalable is each solution?"
    how = (
        "Measured on the real artifacts at every size (counts, bytes, resolution times), and "
        "through the event model: revocation delays, outages, key compromise and recovery."
    )
    evidence = []
    fastest = min(at, key=lambda t: (at[t].get("resolve_cold_ms", math.inf), t))
    slowest = max(at, key=lambda t: (at[t].get("resolve_cold_ms", 0), t))
    evidence.append(
        f"Cold resolution at {world} countries: {fastest} {at[fastest]['resolve_cold_ms']:.0f} ms "
        f"to {slowest} {at[slowest]['resolve_cold_ms']:.0f} ms; warm (cached) answers take "
        f"{min(v['resolve_warm_us'] for v in at.values()):.0f}-"
        f"{max(v['resolve_warm_us'] for v in at.values()):.0f} us everywhere."
    )
    shares = {t: v.get("worst_compromise_share", 0.0) for t, v in at.items()}
    top, low = max(shares.values()), min(shares.values())
    evidence.append(
        "The worst single-key compromise takes down "
        f"{top:.0%} of the directed relationships in "
        f"{', '.join(sorted(t for t, s in shares.items() if s == top))}, and "
        f"{low:.0%} in {', '.join(sorted(t for t, s in shares.items() if s == low))}."
    )
    central = [t for t in at if at[t].get("availability_central_down", 1.0) < 0.5]
    if central:
        evidence.append(
            "While a central host is down for the outage (a bridge, the global root's host, "
            "the LOTL host): "
            + ", ".join(f"{t} {at[t]['availability_central_down']:.0%}" for t in central)
            + " of resolution time succeeds (cached answers only, until they expire)."
        )

    def least(metric: str, *, high: bool = False) -> str:
        found = [(v[metric], t) for t, v in at.items() if metric in v]
        value = (max if high else min)(v for v, _ in found)
        return " and ".join(sorted(t for v, t in found if v == value))

    def slowest_growth(metric: str) -> str:
        growth = {t: scaling_exponent(results.series(t, metric)) for t in at}
        known = {t: b for t, b in growth.items() if b is not None}
        if not known:
            return "-"
        best = min(known.values())
        return " and ".join(sorted(t for t, b in known.items() if b == best)) + f" (n^{best:.2f})"

    verdict = (
        f"Slowest growth of what must be maintained: {slowest_growth('links_to_maintain')}; "
        f"of the cold resolution time: {slowest_growth('resolve_cold_ms')}. Most available "
        f"under random failures: {least('availability_random', high=True)}; unaffected by "
        f"a central outage: {least('availability_central_down', high=True)}. Smallest "
        f"worst-case compromise: {least('worst_compromise_share')}; fastest recovery from it: "
        f"{least('worst_compromise_recovery_days')}."
    )
    return Answer(question, how, tuple(evidence), verdict)


def _levels(at: Mapping[str, Mapping[str, float]], world: int) -> Answer:
    question = "Are comparable security levels established across the schemes?"
    how = (
        "Bridges map each scheme's levels onto the reference levels itg-loa1..3 in their "
        "cross-certificates (policy mapping); the group's LOTL maps them by equivalence; the "
        "resolver reports the holder's level, the relying party's and the reference level."
    )
    evidence = tuple(
        f"{t}: {v.get('reference_level_share', 0):.0%} of resolutions name a reference level"
        for t, v in sorted(at.items())
    )
    without = sorted(t for t, v in at.items() if v.get("reference_level_share", 0) < 1)
    verdict = (
        "Where the schemes share reference levels (a bridge's policy mappings, the LOTL's "
        "equivalences, or the one global policy) every resolution names a reference level"
        + (f"; {' and '.join(without)} give no common reference level." if without else ".")
    )
    return Answer(question, how, evidence, verdict)


def _robustness_rows(
    results: Results, at: Mapping[str, Mapping[str, float]], topologies: Sequence[str], world: int
) -> tuple[tuple[str, ...], tuple[RobustnessRow, ...]]:
    header = (
        "topology",
        "links to maintain",
        "cold resolution",
        "bytes per cold resolution",
        f"availability, random failures ({world})",
        "availability, central host down (bridge; group: LOTL)",
        "identity revocation p95",
        "country cut-off p95",
        "worst compromise: relationships",
        "its recovery",
    )
    rows = []
    for t in topologies:
        v = at[t]
        rows.append(
            RobustnessRow(
                t,
                (
                    f"{v.get('links_to_maintain', 0):.0f} "
                    f"({_exponent(results, t, 'links_to_maintain')})",
                    f"{v.get('resolve_cold_ms', 0):.0f} ms "
                    f"({_exponent(results, t, 'resolve_cold_ms')})",
                    f"{quantity(v.get('rp_fetch_bytes_per_resolution', 0), 'bytes')} "
                    f"({_exponent(results, t, 'rp_fetch_bytes_per_resolution')})",
                    f"{v.get('availability_random', 0):.2%}",
                    f"{v.get('availability_central_down', 1):.0%}",
                    f"{v.get('revocation_identity_p95_h', 0):.1f} h",
                    f"{v.get('revocation_link_p95_h', 0):.1f} h",
                    f"{v.get('worst_compromise_share', 0):.0%}",
                    f"{v.get('worst_compromise_recovery_days', 0):.0f} days",
                ),
            )
        )
    return header, tuple(rows)
