"""A partner that presents its credentials in a package, on top of the credentials test world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.credentials.world import (
    HAYABUSA,
    HPS_200,
    World,
    isms_certificate,
    plant_audit,
    self_declaration,
    sensor_safety,
)
from tests.homes import NOW
from trustbridge.credentials.formats import Format, present
from trustbridge.credentials.package import make_package

AUDIENCE = "urn:trustbridge:org:VATDE-123456789"
NONCE = "n-0123456789abcdef"


def secure_development(level: str = "ML3") -> dict[str, Any]:
    return {
        "subject": dict(HAYABUSA),
        "claims": [{"criterion": "iec-62443-4-1", "value": level, "scope": "sensor firmware"}],
        "evidence": {"kind": "certificate", "reference": "FCA-SDL-0042"},
    }


def reliability_declaration(mtbf: float = 150000.0) -> dict[str, Any]:
    return {
        "subject": dict(HPS_200),
        "claims": [{"criterion": "mtbf", "value": mtbf, "scope": "HPS-200 at 40 °C"}],
        "evidence": {"kind": "self-declaration", "statement": "From 3 years of field returns."},
    }


def hayabusa_tokens(world: World) -> list[str]:
    """The reference scenario's credentials about Hayabusa, issued and held by Hayabusa."""
    return [
        world.issue(world.fuji, isms_certificate()),
        world.issue(world.fuji, secure_development(), format=Format.SD_JWT),
        world.issue(world.fuji, sensor_safety()),
        world.issue(world.nordsee, plant_audit(), format=Format.SD_JWT),
        world.issue(world.hayabusa, self_declaration()),
        world.issue(world.hayabusa, reliability_declaration()),
    ]


def package(
    world: World,
    tokens: Sequence[str],
    *,
    audience: str = AUDIENCE,
    nonce: str = NONCE,
    suppliers: Sequence[str] = (),
) -> str:
    """Hayabusa presents ``tokens`` to Muster in one package."""
    holder = world.hayabusa.holder.signer
    presentations = [
        present(t, holder=holder, audience=audience, nonce=nonce, issued_at=NOW) for t in tokens
    ]
    return make_package(
        presentations,
        signer=holder,
        chain=world.hayabusa.chain,
        audience=audience,
        nonce=nonce,
        issued_at=NOW,
        suppliers=suppliers,
    )
