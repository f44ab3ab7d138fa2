"""The report: self-contained HTML with inline SVG plots, the CSV with every measurement."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from trustbridge.sim import Results, SimulationResult, Topology, conclude, render_html
from trustbridge.sim.report import PLOTS, plot_svg, write_outputs


@pytest.fixture(scope="module")
def written(quick: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_outputs(quick, out)
    return out


def test_the_csv_holds_every_measurement_with_the_required_columns(
    quick: SimulationResult, written: Path
) -> None:
    rows = list(csv.DictReader(io.StringIO((written / "results.csv").read_text())))
    assert list(rows[0]) == ["topology", "countries", "metric", "value", "unit", "note"]
    assert len(rows) == len(quick.results.measurements)
    assert {r["topology"] for r in rows} == {"", *(t.value for t in Topology)}
    back = Results.from_csv((written / "results.csv").read_text())
    assert back.value("mesh", 5, "cross_certificates") == 20
    assert back.table().keys() == quick.results.table().keys()


def test_the_html_is_self_contained_with_inline_svg_plots(written: Path) -> None:
    html = (written / "report.html").read_text()
    assert html.count("<svg") == len(PLOTS)
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"""(src|href)=["']https?:""", html)
    for topology in Topology:
        assert topology.value in html
    for name in PLOTS:
        assert (written / "img" / f"sim-{name}.svg").read_text().startswith("<svg")


def test_the_html_states_the_computed_conclusion(quick: SimulationResult, written: Path) -> None:
    html = (written / "report.html").read_text()
    conclusions = conclude(quick.results, quick.model)
    assert "Recommended design for a world of 5 countries" in html
    assert f"{conclusions.design}</b>" in html
    for answer in conclusions.answers:
        assert answer.question in html
    assert "single overarching certificate-based process" in html
    assert "bilaterally" in html
    assert "robust and scalable" in html
    assert "a seeded sample" not in html  # quick runs resolve every identity


def test_changing_a_parameter_changes_the_report(quick: SimulationResult) -> None:
    changed = SimulationResult(
        options=quick.options,
        model=quick.model.with_values({"requirements.require_service_recognition": True}),
        results=quick.results,
        recommendations=quick.recommendations,
        seconds=quick.seconds,
    )
    before = conclude(quick.results, quick.model).design
    after = conclude(changed.results, changed.model).design
    assert before != after
    assert f"{after}</b>" in render_html(changed, svgs=dict.fromkeys(PLOTS, "<svg/>"))


def test_plots_are_the_same_bytes_for_the_same_figures(quick: SimulationResult) -> None:
    assert plot_svg(quick.results, "cost") == plot_svg(quick.results, "cost")
