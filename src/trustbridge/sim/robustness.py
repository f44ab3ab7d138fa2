"""Revocation, outages and key compromise of one deployment, through the event model.

The inputs come from the deployment and its measured resolutions: the CAs on every resolved
path (whose CRLs an answer depends on, and one of which carries a revocation), the hosts a cold
resolution needed (from the path's CRL distribution points and AIA bundles), the trust lists
a group answer depends on, and for a compromise the deployment's structure (which keys every
relationship's path passes, which cross-certificates name the compromised key, which relying
parties pin it). The timing comes from the parameters (``operations``, ``risk``,
``key_ceremony``).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from trustbridge.sim.costs import CostModel
from trustbridge.sim.events import (
    Artifact,
    AvailabilityCase,
    Failures,
    Outage,
    RecoveryPlan,
    RevocationCase,
    availability,
    experiment_rng,
    recovery,
    revocation_delays,
    summary,
    triangular,
)
from trustbridge.sim.measure import Resolved
from trustbridge.sim.topologies import Deployment, Topology

__all__ = ["Figures", "availability_figures", "compromise_figures", "revocation_figures"]

#: metric -> (value, unit, note)
Figures = dict[str, tuple[float, str, str]]

_OUTAGE_DAYS = 3.0
_OUTAGE_START_HOURS = 96.0


def _crl(deployment: Deployment, label: str, model: CostModel) -> Artifact:
    return Artifact(
        key=f"crl:{label}",
        host=deployment.cas[label].host,
        interval=model.number("operations.crl_interval_hours"),
        validity=model.number("operations.crl_validity_hours"),
        on_change=bool(model.get("operations.crl_reissue_on_change")),
    )


def _list(key: str, host: str, model: CostModel) -> Artifact:
    return Artifact(
        key=key,
        host=host,
        interval=model.number("operations.list_interval_hours"),
        validity=model.number("operations.list_validity_hours"),
        on_change=bool(model.get("operations.list_reissue_on_change")),
        held=True,
    )


def _ocsp(deployment: Deployment, label: str, model: CostModel) -> Artifact:
    validity = model.number("operations.ocsp_validity_hours")
    return Artifact(
        key=f"ocsp:{label}",
        host=f"ocsp.{deployment.cas[label].host}",
        interval=validity / 2,
        validity=validity,
        on_change=True,
    )


def _artifacts(deployment: Deployment, r: Resolved, model: CostModel) -> list[Artifact]:
    """What the cached answer of ``r`` depends on: the CRL of every CA of its path (each issued
    the next certificate), and for a group answer the holder's list and the LOTL."""
    found = [_crl(deployment, label, model) for label in r.labels]
    if deployment.topology is Topology.GROUP:
        code = r.query.organization.country
        found.append(_list(f"list:{code}", f"list.{code}.example", model))
        found.append(_list("lotl", "lotl.example", model))
    return found


def revocation_figures(
    deployment: Deployment,
    resolved: Sequence[Resolved],
    model: CostModel,
    *,
    seed: int,
    runs: int = 200,
) -> Figures:
    """Hours until a relying party rejects: a revoked identity (by CRL, and by OCSP for a
    relying party that asked OCSP), a revoked or withdrawn TSP, a country cut off."""
    good = [r for r in resolved if r.ok]
    if not good:
        return {}
    topology = deployment.topology
    kinds: dict[str, list[RevocationCase]] = {
        "identity": [],
        "identity_ocsp": [],
        "tsp": [],
        "link": [],
    }
    for r in good:
        artifacts = _artifacts(deployment, r, model)
        keys = {a.key for a in artifacts}
        issuing = r.labels[-1]
        kinds["identity"].append(RevocationCase(tuple(artifacts), frozenset({f"crl:{issuing}"})))
        ocsp = _ocsp(deployment, issuing, model)
        with_ocsp = (*(a for a in artifacts if a.key != f"crl:{issuing}"), ocsp)
        kinds["identity_ocsp"].append(RevocationCase(with_ocsp, frozenset({ocsp.key})))
        tsp = {f"crl:{r.labels[-2]}"} & keys
        if topology is Topology.GROUP:
            tsp.add(f"list:{r.query.organization.country}")
        kinds["tsp"].append(RevocationCase(tuple(artifacts), frozenset(tsp)))
        link = {"lotl"} if topology is Topology.GROUP else {f"crl:{r.labels[-3]}"}
        kinds["link"].append(RevocationCase(tuple(artifacts), frozenset(link)))
    notes = {
        "identity": "identity revoked; the issuing CA's CRL carries it",
        "identity_ocsp": "identity revoked; a relying party that asks OCSP (ours uses CRLs)",
        "tsp": "TSP CA revoked (CRL above it) or withdrawn (group: its trust list)",
        "link": "country cut off: cross-certificate to its root revoked (mesh: by the relying "
        "party's root; bridges: by the bridge; global-root: by the global root) or its LOTL "
        "pointer removed (group)",
    }
    figures: Figures = {}
    for kind, cases in kinds.items():
        # The same random draws for every topology (common random numbers).
        rng = experiment_rng(seed, "revocation", deployment.n, kind)
        mean, p95, worst = summary(revocation_delays(cases, runs=runs, rng=rng))
        figures[f"revocation_{kind}_mean_h"] = (mean, "hours", notes[kind])
        figures[f"revocation_{kind}_p95_h"] = (p95, "hours", notes[kind])
        figures[f"revocation_{kind}_max_h"] = (worst, "hours", notes[kind])
    return figures


def _central_hosts(deployment: Deployment) -> frozenset[str]:
    topology = deployment.topology
    if topology is Topology.GLOBAL_ROOT:
        return frozenset({deployment.world.global_root.host})
    if topology in (Topology.HUB, Topology.HYBRID):
        return frozenset({deployment.hub.host})
    if topology is Topology.BRIDGE_OF_BRIDGES:
        return frozenset({deployment.top.host})
    return frozenset()


def availability_figures(
    deployment: Deployment, resolved: Sequence[Resolved], model: CostModel, *, seed: int
) -> Figures:
    """Share of resolutions that succeed under random host failures, and while the bridge, a
    trust-list host, the LOTL host or an OCSP responder is down."""
    good = [r for r in resolved if r.ok]
    if not good:
        return {}
    cold = model.number("world.cold_fraction")
    cases = [AvailabilityCase(r.hosts, tuple(_artifacts(deployment, r, model))) for r in good]
    ocsp_cases = []
    for r in good:
        issuing = r.labels[-1]
        ocsp = _ocsp(deployment, issuing, model)
        # The issuing CA's host still serves the AIA bundle that leads to it.
        hosts = r.hosts | {ocsp.host}
        artifacts = tuple(a for a in _artifacts(deployment, r, model) if a.key != f"crl:{issuing}")
        ocsp_cases.append(AvailabilityCase(frozenset(hosts), (*artifacts, ocsp)))
    figures: Figures = {}
    horizon = model.number("operations.horizon_days") * 24
    random_failures = Failures(
        seed=seed,
        horizon=horizon,
        mtbf=model.number("operations.host_mtbf_days") * 24,
        mttr=model.number("operations.host_mttr_hours"),
    )
    result = availability(cases, random_failures, seed=seed, cold_fraction=cold)
    note = (
        "share of time a resolution succeeds while every host fails at random (MTBF/MTTR): "
        "cold and warm weighted by world.cold_fraction"
    )
    figures["availability_random"] = (result.overall, "share", note)
    figures["availability_random_cold"] = (result.cold, "share", "the same, cold resolutions")
    figures["availability_random_warm"] = (result.warm, "share", "the same, cached answers")
    hours = model.number("operations.outage_hours")
    # A country some sampled identities come from: its list host and OCSP responders go down,
    # and availability is that of its identities.
    code = good[0].query.organization.country
    holder = next(c for c in deployment.countries if c.code == code)
    theirs = [c for r, c in zip(good, cases, strict=True) if r.query.organization.country == code]
    theirs_ocsp = [
        c for r, c in zip(good, ocsp_cases, strict=True) if r.query.organization.country == code
    ]
    tsp_hosts = frozenset(f"ocsp.{t.national.host}" for t in holder.tsps)
    scenarios: list[tuple[str, frozenset[str], Sequence[AvailabilityCase], str]] = [
        (
            "bridge_down",
            _central_hosts(deployment),
            cases,
            "the bridge (hub, top bridge, or the "
            "global root's host) is down; mesh and group have none",
        ),
        (
            "list_host_down",
            frozenset({f"list.{holder.code}.example"}),
            theirs,
            f"the trust-list host of {holder.iso} is down; for {holder.iso}'s identities",
        ),
        ("lotl_host_down", frozenset({"lotl.example"}), cases, "the LOTL host is down"),
        (
            "ocsp_down",
            tsp_hosts,
            theirs,
            f"the OCSP responders of {holder.iso}'s TSPs are down; for {holder.iso}'s "
            "identities (our resolver checks CRLs)",
        ),
        (
            "ocsp_down_ocsp_rp",
            tsp_hosts,
            theirs_ocsp,
            f"the OCSP responders of {holder.iso}'s TSPs are down; for {holder.iso}'s "
            "identities, a relying party that checks them by OCSP",
        ),
    ]
    start = _OUTAGE_START_HOURS
    for name, hosts, scenario_cases, text in scenarios:
        outage = Outage(hosts, start, hours)
        failures = Failures(seed=seed, horizon=start + hours + 24 * _OUTAGE_DAYS, outage=outage)
        result = availability(
            scenario_cases,
            failures,
            seed=seed,
            cold_fraction=cold,
            window=(start, start + hours),
        )
        figures[f"availability_{name}"] = (
            result.overall,
            "share",
            f"{text}, for {hours:g} hours: share of that time a resolution succeeds",
        )
        figures[f"availability_{name}_cold"] = (result.cold, "share", f"{text}; cold resolutions")
    return figures


# -- compromise ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    kind: str
    label: str
    keys: int


def _targets(deployment: Deployment) -> list[_Target]:
    d = deployment
    first = d.countries[0]
    n = d.n
    tsps = len(first.tsps)
    if d.topology is Topology.GLOBAL_ROOT:
        return [
            _Target("tsp", first.tsps[0].global_.label, n * tsps),
            _Target("root", first.global_ca.label, n),
            _Target("central", d.world.global_root.label, 1),
        ]
    targets = [
        _Target("tsp", first.tsps[0].national.label, n * tsps),
        _Target("root", first.root.label, n),
    ]
    if d.topology in (Topology.HUB, Topology.HYBRID):
        targets.append(_Target("central", d.hub.label, 1))
    if d.topology is Topology.BRIDGE_OF_BRIDGES:
        regions = len({d.region_of(c.index) for c in d.countries})
        targets.append(_Target("central", d.top.label, 1))
        targets.append(_Target("regional", "region/1", regions))
    if d.topology is Topology.GROUP:
        targets.append(_Target("central", "lotl-signer", 1))
        targets.append(_Target("list-signer", f"list-signer/{first.code}", n))
    if d.topology is Topology.HYBRID:
        targets.append(_Target("list-signer", f"list-signer/{first.code}", n))
        targets.append(_Target("lotl-signer", "lotl-signer", 1))
    return targets


def compromise_figures(
    deployment: Deployment, model: CostModel, *, seed: int, runs: int = 40
) -> Figures:
    """For a compromised TSP, national root, bridge (or global root, or LOTL signer) and list
    signer key: what it affects and what re-keying takes, with the recovery as events.

    A directed relationship (relying country, holder country) is affected where the paths to
    some of the holder's identities pass the key, or the relying party pins it; it counts
    with the share of the holder's identities affected. Every CA that certified the key
    (the parent of a subordinate, the issuers of cross-certificates to it) needs a ceremony
    to certify the new key; relying parties that pin it re-pin; a TSP's identities are
    re-issued. Recoveries of the same kind draw the same random durations in every topology
    (common random numbers), so that topologies differ by structure, not by chance.
    """
    d = deployment
    n = d.n
    orgs = len(d.countries[0].organizations)
    day = 24.0
    # For every pair of countries and every TSP of the holder: the keys its identities'
    # recognition depends on, the issuer->subject steps of the path, and how many there are.
    routes: dict[tuple[int, int], list[tuple[set[str], set[tuple[str, str]], int]]] = {}
    for i, relying in enumerate(d.countries):
        anchors = set(d.identity_anchors(relying))
        for j, holder in enumerate(d.countries):
            if i == j:
                continue
            options = []
            for t in range(len(holder.tsps)):
                members = [o for o in holder.organizations if o.tsp == t]
                if not members:
                    continue
                labels = d.path_labels(relying, members[0])
                keys = anchors | set(labels) | set(d.list_labels(members[0]))
                options.append((keys, set(itertools.pairwise(labels)), len(members)))
            routes[(i, j)] = options
    figures: Figures = {}
    for target in _targets(d):
        x = target.label
        affected: list[tuple[int, int, float, set[tuple[str, str]]]] = []
        forgeable = 0
        for (i, j), options in routes.items():
            hit = [(steps, count) for keys, steps, count in options if x in keys]
            if hit:
                share = sum(count for _, count in hit) / orgs
                affected.append((i, j, share, set().union(*(steps for steps, _ in hit))))
        for j in {j for _, j, _, _ in affected}:
            forgeable += max(round(share * orgs) for _, jj, share, _ in affected if jj == j)
        pinned_by = [i for i, c in enumerate(d.countries) if x in d.pinned(c)]
        counterparts = sorted(
            ({link.issuer for link in d.links if link.subject == x} | {d.parent_of(x) or x}) - {x}
        )
        issued = [link for link in d.links if link.issuer == x]
        to_x = [link for link in d.links if link.subject == x]
        tsp = x.startswith(("tsp/", "global/tsp/"))
        reissued = 0.0
        if tsp:
            first = d.countries[0]
            reissued = sum(
                1 for o in first.organizations if d.path_labels(d.countries[-1], o)[-1] == x
            )
            reissued /= orgs
        link_certificates = len(issued) + len(to_x) + len(d.children_of(x))
        link_certificates += d.parent_of(x) is not None
        lists = x.startswith("list-signer/") or x == "lotl-signer"
        rng = experiment_rng(seed, "recovery", n, target.kind)
        results = []
        for _ in range(runs):
            ceremony = model.get("key_ceremony.duration_days")
            plan = RecoveryPlan()
            detect = plan.add("detect", model.number("risk.detection_hours"))
            rekey = plan.add("rekey", triangular(rng, ceremony) * day, [detect])
            for y in counterparts:
                plan.add(f"sign:{y}", triangular(rng, ceremony) * day, [rekey])
            for i in pinned_by:
                plan.add(
                    f"anchor:{i}",
                    triangular(rng, model.get("risk.anchor_update_days")) * day,
                    [rekey],
                )
            if tsp:
                plan.add("reissue", triangular(rng, model.get("risk.reissue_days")) * day, [rekey])
            if lists:
                interval = model.number("operations.list_interval_hours")
                plan.add("list-refresh", rng.uniform(0, interval), [rekey])
            weights = []
            for i, _, share, steps in affected:
                needs = [rekey]
                needs += [f"sign:{a}" for a, b in steps if b == x and a != x]
                if i in pinned_by:
                    needs.append(f"anchor:{i}")
                if tsp:
                    needs.append("reissue")
                if lists:
                    needs.append("list-refresh")
                plan.relationships.append(tuple(dict.fromkeys(needs)))
                weights.append(share)
            results.append(recovery(plan, weights=weights))
        prefix = f"compromise_{target.kind}"
        note = f"key {x}"
        figures[f"{prefix}_keys"] = (target.keys, "keys", f"keys of this class; {note} taken")
        figures[f"{prefix}_relationships"] = (len(affected), "relationships", note)
        figures[f"{prefix}_relationship_share"] = (
            sum(share for _, _, share, _ in affected) / (n * (n - 1)),
            "share",
            f"{note}: of the n(n-1) directed relationships, weighted by identities affected",
        )
        figures[f"{prefix}_identities"] = (
            forgeable,
            "identities",
            f"{note}: identities whose recognition passes the key",
        )
        figures[f"{prefix}_identity_share"] = (
            reissued,
            "countries' identities",
            f"{note}: identities to re-issue",
        )
        figures[f"{prefix}_link_certificates"] = (
            link_certificates,
            "certificates",
            f"{note}: CA and cross-certificates to re-issue",
        )
        figures[f"{prefix}_ceremonies"] = (
            1 + len(counterparts),
            "ceremonies",
            f"{note}: its own and every certifier's",
        )
        figures[f"{prefix}_anchor_updates"] = (
            len(pinned_by),
            "countries",
            f"{note}: countries whose relying parties re-pin",
        )
        figures[f"{prefix}_recovery_days"] = (
            statistics.fmean(r.hours for r in results) / day,
            "days",
            note,
        )
        figures[f"{prefix}_relationship_days"] = (
            statistics.fmean(r.relationship_hours for r in results) / day,
            "relationship-days",
            f"{note}: days each affected relationship was down, weighted by identities",
        )
    return figures
