"""A station's results file: what a sensor's test result holds, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.opcua.conftest import OTHER, RESULT
from trustbridge.errors import InputError
from trustbridge.opcua import Measurement, SensorTestResult, read_results


def _file(*items: dict[str, Any]) -> bytes:
    return json.dumps(list(items)).encode()


def test_results_round_trip_through_json() -> None:
    data = _file(RESULT.to_json(), OTHER.to_json())
    assert read_results(data) == (RESULT, OTHER)
    assert RESULT.to_json()["tested_at"].endswith("Z")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "maybe"}, "verdict 'maybe' is not pass or fail"),
        ({"report_sha256": "ABC"}, "report_sha256 'ABC' is not 64 lowercase hex"),
        ({"tested_at": "2026-11-20T08:00:00"}, "needs a time zone"),
        ({"serial": "../etc"}, "is not a serial number"),
        ({"measurements": [{"name": "1x", "value": 1}]}, "measurement name '1x' is not a name"),
        ({"measurements": [{"name": "X", "value": "high"}]}, "value 'high' is not a number"),
        ({"measurements": [{"name": "X", "value": 1}, {"name": "X", "value": 2}]}, "twice"),
    ],
)
def test_malformed_results_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_results(_file({**RESULT.to_json(), **change}), source="results.json")


def test_a_results_file_names_each_sensor_once_and_is_a_list() -> None:
    with pytest.raises(InputError, match=r"serial\(s\) HPS200-000002 appear more than once"):
        read_results(_file(RESULT.to_json(), RESULT.to_json()))
    with pytest.raises(InputError, match="lacks 'verdict'"):
        read_results(_file({"serial": "A1", "tested_at": "2026-01-01T00:00:00Z"}))
    with pytest.raises(InputError, match="is not a JSON list"):
        read_results(b'{"serial": "A1"}')
    with pytest.raises(InputError, match="is not JSON"):
        read_results(b"[")


def test_a_measurement_is_finite() -> None:
    with pytest.raises(InputError, match="is not finite"):
        Measurement("Span", float("nan"), "%")
    assert (
        SensorTestResult(
            serial="A1", verdict="fail", tested_at=RESULT.tested_at, report_sha256="0" * 64
        ).measurements
        == ()
    )
