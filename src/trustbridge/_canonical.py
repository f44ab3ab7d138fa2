"""The one byte form of a JSON value that trustbridge signs, hashes and logs."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace.

    For the values trustbridge signs (strings, integers, arrays, objects with ASCII keys) this
    is the JSON Canonicalization Scheme of RFC 8785.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
