"""A sensor test station's results: per sensor serial a verdict, the measured values, the
digest of the test report and when the sensor was tested.

These are the values the station's OPC UA server exposes (:mod:`trustbridge.opcua.station`)
and a client reads back (:mod:`trustbridge.opcua.client`); as JSON they are the station's
results file (``trustbridge opcua serve --results FILE``)::

    [{"serial": "HPS200-000002", "verdict": "pass", "tested_at": "2026-11-20T08:00:00Z",
      "report_sha256": "…64 hex…",
      "measurements": [{"name": "ZeroOffset", "value": 0.02, "unit": "kPa"}]}]
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError

__all__ = ["Measurement", "SensorTestResult", "read_results"]

Verdict = Literal["pass", "fail"]

_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_RESULTS = 10_000


@dataclass(frozen=True)
class Measurement:
    """One measured value: a name (an OPC UA browse name), the value and its unit."""

    name: str
    value: float
    unit: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InputError(
                f"measurement name {self.name!r} is not a name (a letter, then letters, digits "
                "and _, at most 64)"
            )
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise InputError(f"measurement {self.name}: value {self.value!r} is not a number")
        if not math.isfinite(self.value):
            raise InputError(f"measurement {self.name}: value {self.value!r} is not finite")
        object.__setattr__(self, "value", float(self.value))
        if not isinstance(self.unit, str) or len(self.unit) > 32:
            raise InputError(f"measurement {self.name}: unit {self.unit!r} is not a short text")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class SensorTestResult:
    """The result of one sensor's test at the station."""

    serial: str
    verdict: Verdict
    tested_at: datetime
    #: SHA-256 (hex) of the signed test report.
    report_sha256: str
    measurements: tuple[Measurement, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or not _SERIAL.match(self.serial):
            raise InputError(f"sensor serial {self.serial!r} is not a serial number")
        if self.verdict not in ("pass", "fail"):
            raise InputError(f"sensor {self.serial}: verdict {self.verdict!r} is not pass or fail")
        if not isinstance(self.tested_at, datetime):
            raise InputError(f"sensor {self.serial}: tested_at is not a time")
        object.__setattr__(self, "tested_at", ensure_utc(self.tested_at))
        if not isinstance(self.report_sha256, str) or not _SHA256.match(self.report_sha256):
            raise InputError(
                f"sensor {self.serial}: report_sha256 {self.report_sha256!r} is not 64 lowercase "
                "hex digits"
            )
        measurements = tuple(self.measurements)
        names = [m.name for m in measurements]
        if len(set(names)) != len(names):
            raise InputError(f"sensor {self.serial}: a measurement name appears twice")
        object.__setattr__(self, "measurements", measurements)

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "verdict": self.verdict,
            "tested_at": self.tested_at.isoformat().replace("+00:00", "Z"),
            "report_sha256": self.report_sha256,
            "measurements": [m.to_json() for m in self.measurements],
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "results") -> SensorTestResult:
        if not isinstance(data, dict):
            raise InputError(f"{source}: a result is not a JSON object")
        try:
            tested_at = datetime.fromisoformat(str(data["tested_at"]).replace("Z", "+00:00"))
            if tested_at.tzinfo is None:
                raise InputError(f"{source}: tested_at {data['tested_at']!r} needs a time zone")
            raw = data.get("measurements", [])
            if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
                raise InputError(f"{source}: measurements is not a list of objects")
            return cls(
                serial=data["serial"],
                verdict=cast(Verdict, data["verdict"]),
                tested_at=tested_at,
                report_sha256=data["report_sha256"],
                measurements=tuple(
                    Measurement(m["name"], m["value"], m.get("unit", "")) for m in raw
                ),
            )
        except KeyError as exc:
            raise InputError(f"{source}: a result lacks {exc.args[0]!r}") from None
        except ValueError as exc:
            raise InputError(f"{source}: {exc}") from None


def read_results(data: bytes, *, source: str = "results") -> tuple[SensorTestResult, ...]:
    """Parse a station's results file (a JSON list); serials must be unique."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{source} is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise InputError(f"{source} is not a JSON list of results")
    if len(value) > _MAX_RESULTS:
        raise InputError(f"{source} holds {len(value)} results; at most {_MAX_RESULTS}")
    results = tuple(SensorTestResult.from_json(item, source=source) for item in value)
    _unique(results, source)
    return results


def _unique(results: Sequence[SensorTestResult], source: str) -> None:
    counts = Counter(r.serial for r in results)
    duplicates = sorted(s for s, n in counts.items() if n > 1)
    if duplicates:
        raise InputError(f"{source}: serial(s) {', '.join(duplicates)} appear more than once")
