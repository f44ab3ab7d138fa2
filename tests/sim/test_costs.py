"""The parameters file, the cost model and a recommendation that follows the parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustbridge.sim import CostFileError, CostModel, SimulationResult, conclude, recommend
from trustbridge.sim.costs import cost_breakdown, requirement_misses


def test_the_shipped_parameters_load() -> None:
    model = CostModel.default()
    assert model.get("currency") == "EUR"
    assert model.number("agreement.negotiation") > 0
    assert ("operations.crl_validity_hours", 24) in model.flat()


def test_a_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text("agreement:\n  negotiation: 1000\nrisk:\n  compromise_per_key_year: 0.01\n")
    model = CostModel.load(path)
    assert model.number("agreement.negotiation") == 1000
    assert model.number("risk.compromise_per_key_year") == 0.01
    assert model.number("agreement.maintenance_per_year") == CostModel.default().number(
        "agreement.maintenance_per_year"
    )
    assert model.source == str(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("agrement:\n  negotiation: 3\n", r"\$ \(line 1\).*'agrement' was unexpected"),
        (
            "agreement:\n  negotiation: lots\n",
            r"\$\.agreement\.negotiation \(line 2\).*not of type",
        ),
        ("agreement:\n  negotiation: -1\n", r"\$\.agreement\.negotiation \(line 2\).*minimum"),
        ("risk:\n  compromise_per_key_year: 2\n", r"compromise_per_key_year.*maximum"),
        (
            "key_ceremony:\n  duration_days: [5, 1, 10]\n",
            r"\$\.key_ceremony\.duration_days \(line 2\).*in that order",
        ),
        (
            "operations:\n  list_interval_hours: 48\n",
            r"\$\.operations\.list_interval_hours \(line 2\).*must not exceed",
        ),
        ("agreement: [1, 2\n", r"not valid YAML"),
        ("- 1\n- 2\n", r"not of type 'object'"),
    ],
)
def test_a_bad_parameters_file_is_refused_with_its_place(
    tmp_path: Path, text: str, match: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CostFileError, match=match) as caught:
        CostModel.load(path)
    assert str(path) in caught.value.message


def test_an_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(CostFileError, match="cannot read the file"):
        CostModel.load(tmp_path / "missing.yaml")


def test_the_breakdown_adds_up_and_scales_with_its_parameters(quick: SimulationResult) -> None:
    table = quick.results.table()
    values = table[("hub", 5)]
    model = quick.model
    base = cost_breakdown(values, model, topology="hub", countries=5)
    assert base.total == pytest.approx(sum(base.components.values()))
    assert base.per_participant == pytest.approx(base.total / 5)
    dearer = cost_breakdown(
        values,
        model.with_values(
            {
                "agreement.maintenance_per_year": model.number("agreement.maintenance_per_year")
                + 1000
            }
        ),
        topology="hub",
        countries=5,
    )
    assert dearer.components["agreements"] - base.components["agreements"] == pytest.approx(
        values["agreements"] * 1000
    )
    assert base.components["migration"] == 0
    migration = cost_breakdown(
        table[("global-root", 5)], model, topology="global-root", countries=5
    ).components["migration"]
    assert migration > 0


def test_the_recommendation_is_the_cheapest_that_meets_the_requirements(
    quick: SimulationResult,
) -> None:
    table = quick.results.table()
    for r in recommend(table, quick.model):
        eligible = [(t, c) for t, c in r.ranking if t not in r.excluded]
        assert (r.topology, r.per_participant) == eligible[0]
        assert r.per_participant == min(c for _, c in eligible)


def test_expensive_agreements_favour_the_fewest_agreements(quick: SimulationResult) -> None:
    model = quick.model.with_values({"agreement.negotiation": 1e12})
    table = quick.results.table()
    by_size = {r.countries: r.topology for r in recommend(table, model)}
    # Two countries: the mesh has one agreement, everything else two or more.
    assert by_size[2] == "mesh"
    # Five: the mesh has ten, the others (but bridge-of-bridges) five.
    assert by_size[5] != "mesh"
    assert table[(by_size[5], 5)]["agreements"] == 5


def test_free_agreements_and_links_make_the_mesh_win(quick: SimulationResult) -> None:
    model = quick.model.with_values(
        {
            "agreement.negotiation": 0,
            "agreement.maintenance_per_year": 0,
            "key_ceremony.per_link_certificate": 0,
            "key_ceremony.cost": 0,
        }
    )
    assert {r.topology for r in recommend(quick.results.table(), model)} == {"mesh"}


def test_requiring_service_recognition_leaves_the_group_constructions(
    quick: SimulationResult,
) -> None:
    table = quick.results.table()
    model = quick.model.with_values({"requirements.require_service_recognition": True})
    recommended = recommend(table, model)
    assert {r.topology for r in recommended} <= {"group", "hybrid"}
    assert "mesh" in recommended[-1].excluded
    # With expensive cross-certificates on top, the group beats the hybrid (its bridge).
    dear_links = model.with_values({"key_ceremony.per_link_certificate": 1e9})
    assert {r.topology for r in recommend(table, dear_links)} == {"group"}


def test_a_free_global_policy_makes_the_global_root_win(quick: SimulationResult) -> None:
    model = quick.model.with_values(
        {
            "harmonisation.per_country": 0,
            "harmonisation.reissue_per_identity": 0,
            "risk.compromise_per_key_year": 0,
        }
    )
    last = recommend(quick.results.table(), model)[-1]
    assert recommend(quick.results.table(), quick.model)[-1].topology != "global-root"
    assert last.topology == "global-root"


def test_the_written_conclusion_follows_the_parameters(quick: SimulationResult) -> None:
    before = conclude(quick.results, quick.model)
    after = conclude(
        quick.results, quick.model.with_values({"requirements.require_service_recognition": True})
    )
    assert before.design != after.design
    assert after.design in ("group", "hybrid")
    assert any(after.design in line for line in after.design_reasons)
    assert any("left out" in line for line in after.design_reasons)


def test_a_path_too_long_is_a_missed_requirement(quick: SimulationResult) -> None:
    values = quick.results.table()[("bridge-of-bridges", 5)]
    strict = quick.model.with_values({"requirements.max_path_length": 5})
    assert requirement_misses(values, strict) is not None
    assert "max_path_length" in (requirement_misses(values, strict) or "")
    assert requirement_misses(values, quick.model) is None
