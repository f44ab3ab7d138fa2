"""``trustbridge simulate`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustbridge.cli.main import app


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_simulate_quick_writes_the_report(runner: CliRunner, tmp_path: Path) -> None:
    costs = tmp_path / "costs.yaml"
    costs.write_text("requirements:\n  require_service_recognition: true\n")
    out = tmp_path / "out"
    arguments = ["simulate", "--quick", "--countries", "2,3", "--seed", "3"]
    result = runner.invoke(app, [*arguments, "--costs", str(costs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recommended topology per world size" in result.output
    assert (out / "report.html").is_file()
    assert (out / "results.csv").read_text().startswith("topology,countries,metric,value,unit")
    assert len(list((out / "img").glob("sim-*.svg"))) == 4
    html = (out / "report.html").read_text()
    assert str(costs) in html  # the parameters' source is named
    assert "group" in result.output or "hybrid" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--countries", "2,x"], "'x' is not a whole number"),
        (["--countries", "1,3"], "at least 2 countries"),
        (["--countries", "2,500"], "at most"),
        (["--costs", "missing.yaml"], "cannot read the file"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    from trustbridge.errors import InputError

    with pytest.raises(InputError, match=message):
        app(["simulate", *arguments, "--out", str(tmp_path)], standalone_mode=False)


def test_simulate_is_listed_in_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert "simulate" in result.output
