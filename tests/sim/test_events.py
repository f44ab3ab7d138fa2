"""The event model: the loop, revocation delays, availability, recovery."""

from __future__ import annotations

import pytest

from trustbridge.sim.events import (
    Artifact,
    AvailabilityCase,
    EventLoop,
    Failures,
    Outage,
    RecoveryPlan,
    RevocationCase,
    availability,
    experiment_rng,
    recovery,
    revocation_delays,
)

CRL = Artifact("crl:a", "a.example", interval=12, validity=24, on_change=True)
OTHER = Artifact("crl:b", "b.example", interval=12, validity=24, on_change=True)
LIST = Artifact("list:x", "list.example", interval=12, validity=24, on_change=True, held=True)


def test_events_run_in_time_order_and_ties_in_the_order_scheduled() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.at(5, lambda: seen.append("five"))
    loop.at(1, lambda: seen.append("one"))
    loop.at(5, lambda: seen.append("five again"))
    loop.at(3, lambda: loop.after(1, lambda: seen.append("four")))
    loop.run(until=4.5)
    assert seen == ["one", "four"]
    loop.run()
    assert seen == ["one", "four", "five", "five again"]
    assert loop.now == 5


def test_a_revocation_reaches_the_relying_party_within_the_crl_validity() -> None:
    case = RevocationCase((CRL, OTHER), frozenset({"crl:a"}))
    delays = revocation_delays([case], runs=300, rng=experiment_rng(1, "t"))
    assert all(0 <= d <= 24 for d in delays)
    # The answer is cached until the earlier of two nextUpdates: sooner than one CRL alone.
    alone = revocation_delays(
        [RevocationCase((CRL,), frozenset({"crl:a"}))], runs=300, rng=experiment_rng(1, "t")
    )
    assert sum(delays) < sum(alone)


def test_without_reissue_on_change_the_next_periodic_crl_carries_it() -> None:
    lazy = Artifact("crl:a", "a.example", interval=10, validity=24, on_change=False)
    eager = Artifact("crl:a", "a.example", interval=10, validity=24, on_change=True)
    delays = {
        a.on_change: revocation_delays(
            [RevocationCase((a,), frozenset({"crl:a"}))], runs=300, rng=experiment_rng(2, "t")
        )
        for a in (lazy, eager)
    }
    assert max(delays[False]) <= 24 + 10
    assert max(delays[True]) <= 24
    assert sum(delays[False]) > sum(delays[True])


def test_revocation_delays_are_the_same_for_the_same_seed() -> None:
    case = RevocationCase((CRL, OTHER, LIST), frozenset({"list:x"}))
    one = revocation_delays([case], runs=50, rng=experiment_rng(3, "x"))
    two = revocation_delays([case], runs=50, rng=experiment_rng(3, "x"))
    assert one == two


def test_a_carrier_must_be_one_of_the_artifacts() -> None:
    with pytest.raises(ValueError, match="carriers"):
        RevocationCase((CRL,), frozenset({"crl:z"}))
    with pytest.raises(ValueError, match="interval"):
        Artifact("crl:q", "q", interval=30, validity=24, on_change=True)


def test_no_failures_no_unavailability() -> None:
    case = AvailabilityCase(frozenset({"a.example"}), (CRL,))
    result = availability([case], Failures(seed=1, horizon=1000), seed=1, cold_fraction=0.5)
    assert (result.cold, result.warm, result.overall) == (1.0, 1.0, 1.0)


def test_an_outage_of_a_needed_host_fails_cold_resolutions_and_later_cached_ones() -> None:
    case = AvailabilityCase(frozenset({"a.example"}), (CRL,))
    failures = Failures(seed=1, horizon=400, outage=Outage(frozenset({"a.example"}), 100, 48))
    result = availability([case], failures, seed=1, cold_fraction=0.2, window=(100, 148))
    assert result.cold == 0.0
    # A cached answer lasts at most a CRL validity (24 h) into the 48 h outage.
    assert 0.0 < result.warm <= 0.5
    assert result.overall == pytest.approx(0.2 * result.cold + 0.8 * result.warm)


def test_an_outage_elsewhere_does_not_matter() -> None:
    case = AvailabilityCase(frozenset({"a.example"}), (CRL,))
    failures = Failures(seed=1, horizon=400, outage=Outage(frozenset({"z.example"}), 100, 48))
    assert availability([case], failures, seed=1, cold_fraction=0.2, window=(100, 148)).overall == 1


def test_a_held_list_expires_while_its_host_is_down() -> None:
    case = AvailabilityCase(frozenset({"a.example"}), (CRL, LIST))
    failures = Failures(seed=1, horizon=400, outage=Outage(frozenset({"list.example"}), 100, 48))
    result = availability([case], failures, seed=1, cold_fraction=1.0, window=(100, 148))
    # The held list stays usable until its next_update (at most 24 h in), then is stale.
    assert 0.0 < result.cold <= 0.5


def test_random_failures_are_per_host_and_reproducible() -> None:
    one = Failures(seed=9, horizon=24 * 365, mtbf=24 * 30, mttr=6)
    two = Failures(seed=9, horizon=24 * 365, mtbf=24 * 30, mttr=6)
    assert one.down("a.example") == two.down("a.example")
    assert one.down("a.example") != one.down("b.example")
    assert all(end > start for start, end in one.down("a.example"))


def test_recovery_takes_the_longest_chain_each_relationship_needs() -> None:
    plan = RecoveryPlan()
    plan.add("detect", 24)
    plan.add("rekey", 48, ["detect"])
    plan.add("sign:b", 24, ["rekey"])
    plan.add("anchor:a", 240, ["rekey"])
    plan.relationships += [("rekey",), ("rekey", "sign:b"), ("anchor:a",)]
    result = recovery(plan)
    assert result.hours == 24 + 48 + 240
    assert result.relationship_hours == 72 + 96 + 312
    weighted = recovery(plan, weights=[1.0, 0.5, 0.0])
    assert weighted.relationship_hours == 72 + 48


def test_a_relationship_waiting_for_a_missing_task_is_an_error() -> None:
    plan = RecoveryPlan()
    plan.add("rekey", 1)
    plan.relationships.append(("rekey", "sign:nobody"))
    with pytest.raises(ValueError, match="never finishes"):
        recovery(plan)
