"""The NIST Path Discovery Test Suite as data: its cases, pool, CRLs and settings.

Shared by the conformance tests (``test_pdts.py``) and the benchmark (``bench/resolve.py``).
Data: ``../shared/conformance/pdts/`` (see that folder's README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.errors import ValidationError
from trustbridge.trust.paths import PathBuilder, read_certificates
from trustbridge.trust.validation import RevocationMode, ValidationParams

__all__ = ["PDTS", "Pdts", "verdict"]

PDTS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "pdts"


@dataclass(frozen=True)
class Pdts:
    """The suite as its ``cases.json`` describes it, loaded once."""

    root: Path
    anchor_der: bytes
    at: datetime
    explicit_policy: bool
    cases: tuple[dict[str, Any], ...]
    #: Every certificate of every ``.p7c`` bundle of the mirror, DER (with duplicates).
    pool: tuple[bytes, ...]
    crls: tuple[bytes, ...]

    @classmethod
    def load(cls, root: Path = PDTS) -> Pdts:
        suite: dict[str, Any] = json.loads((root / "cases.json").read_text())
        settings = suite["settings"]
        if settings["user_initial_policy_set"] != ["2.5.29.32.0"]:
            raise RuntimeError("PDTS: expected anyPolicy as the initial policy set")
        if settings["revocation"] != "require":
            raise RuntimeError("PDTS: expected revocation checking to be required")
        pool: list[bytes] = []
        crls: list[bytes] = []
        for path in sorted((root / "Hosts").rglob("*")):
            if path.suffix == ".p7c":
                pool += [c.public_bytes(Encoding.DER) for c in read_certificates(path.read_bytes())]
            elif path.suffix == ".crl":
                crls.append(path.read_bytes())
        return cls(
            root=root,
            anchor_der=(root / suite["trust_anchor"]).read_bytes(),
            at=datetime.fromisoformat(suite["validation_time"].replace("Z", "+00:00")),
            explicit_policy=bool(settings["initial_explicit_policy"]),
            cases=tuple(suite["cases"]),
            pool=tuple(pool),
            crls=tuple(crls),
        )

    def leaf_der(self, case: dict[str, Any]) -> bytes:
        return (self.root / str(case["certificate"])).read_bytes()

    def case(self, name: str) -> dict[str, Any]:
        return next(c for c in self.cases if c["name"] == name)

    @property
    def anchor(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.anchor_der)

    def leaf(self, case: dict[str, Any]) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.leaf_der(case))

    def params(self, *, pooled: bool) -> ValidationParams:
        """The suite's initial settings; ``pooled`` adds every CRL of the mirror."""
        return ValidationParams(
            at=self.at,
            acceptable_policies=frozenset(),
            require_explicit_policy=self.explicit_policy,
            revocation=RevocationMode.REQUIRE,
            crls=self.crls if pooled else (),
        )

    def certificates(self) -> list[x509.Certificate]:
        return [x509.load_der_x509_certificate(der) for der in self.pool]


def verdict(builder: PathBuilder, leaf: x509.Certificate, params: ValidationParams) -> str:
    """``valid`` or ``invalid``, as the suite's expected results say it."""
    try:
        builder.build(leaf, params)
    except ValidationError:
        return "invalid"
    return "valid"
