"""How the report and the conclusions write figures."""

from __future__ import annotations

import math

__all__ = ["money", "quantity"]


def money(value: float, currency: str) -> str:
    """``1.23 M EUR``, ``456 k EUR``, ``789 EUR``."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f} M {currency}"
    if abs(value) >= 1e3:
        return f"{value / 1e3:,.0f} k {currency}"
    return f"{value:,.0f} {currency}"


def quantity(value: float, unit: str, *, with_unit: bool = True) -> str:
    """A share as a percentage, bytes in B/kB/MB, other numbers with (or without) their unit;
    ``-`` for a figure that is missing (NaN)."""
    if math.isnan(value):
        return "-"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "bytes":
        for size, name in ((1e6, "MB"), (1e3, "kB")):
            if value >= size:
                return f"{value / size:,.1f} {name}"
        return f"{value:,.0f} B"
    text = f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}" if with_unit and unit else text
