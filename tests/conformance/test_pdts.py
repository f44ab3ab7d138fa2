"""NIST Path Discovery Test Suite (HTTP-URI subset): path *building* through a bridge mesh.

Each case runs twice: from an unordered pool (every certificate of every ``.p7c`` bundle) and
through the URL mirror as fetcher (AIA caIssuers discovery). The default search limits are in
force, so a search that loops or explodes fails instead of hanging.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from trustbridge.errors import ValidationError
from trustbridge.trust.paths import CertificatePool, MirrorFetcher, PathBuilder, read_certificates
from trustbridge.trust.validation import RevocationMode, ValidationParams

PDTS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "pdts"
pytestmark = pytest.mark.skipif(not PDTS.is_dir(), reason=f"PDTS data not found at {PDTS}")


def _suite() -> dict[str, Any]:
    if not PDTS.is_dir():
        return {"cases": []}
    data: dict[str, Any] = json.loads((PDTS / "cases.json").read_text())
    return data


SUITE = _suite()
CASES = SUITE["cases"]


@pytest.fixture(scope="module")
def anchor() -> x509.Certificate:
    return x509.load_der_x509_certificate((PDTS / SUITE["trust_anchor"]).read_bytes())


@pytest.fixture(scope="module")
def params() -> ValidationParams:
    settings = SUITE["settings"]
    assert settings["user_initial_policy_set"] == ["2.5.29.32.0"]
    assert settings["revocation"] == "require"
    return ValidationParams(
        at=datetime.fromisoformat(SUITE["validation_time"].replace("Z", "+00:00")),
        acceptable_policies=frozenset(),
        require_explicit_policy=settings["initial_explicit_policy"],
        revocation=RevocationMode.REQUIRE,
    )


@pytest.fixture(scope="module")
def pool_and_crls() -> tuple[list[x509.Certificate], tuple[bytes, ...]]:
    certificates: list[x509.Certificate] = []
    crls: list[bytes] = []
    for path in sorted((PDTS / "Hosts").rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".p7c":
            certificates += read_certificates(path.read_bytes())
        elif path.suffix == ".crl":
            crls.append(path.read_bytes())
    return certificates, tuple(crls)


def _leaf(case: dict[str, Any]) -> x509.Certificate:
    return x509.load_der_x509_certificate((PDTS / case["certificate"]).read_bytes())


def _verdict(builder: PathBuilder, leaf: x509.Certificate, params: ValidationParams) -> str:
    try:
        builder.build(leaf, params)
    except ValidationError:
        return "invalid"
    return "valid"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_from_the_pool(
    case: dict[str, Any],
    anchor: x509.Certificate,
    params: ValidationParams,
    pool_and_crls: tuple[list[x509.Certificate], tuple[bytes, ...]],
) -> None:
    certificates, crls = pool_and_crls
    builder = PathBuilder(anchors=[anchor], pool=CertificatePool(certificates))
    pooled = ValidationParams(
        at=params.at,
        acceptable_policies=params.acceptable_policies,
        require_explicit_policy=params.require_explicit_policy,
        revocation=params.revocation,
        crls=crls,
    )
    assert _verdict(builder, _leaf(case), pooled) == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_through_the_url_mirror(
    case: dict[str, Any], anchor: x509.Certificate, params: ValidationParams
) -> None:
    builder = PathBuilder(anchors=[anchor], fetcher=MirrorFetcher(PDTS / "Hosts"))
    assert _verdict(builder, _leaf(case), params) == case["expected"]


def test_an_empty_pool_names_the_missing_path(
    anchor: x509.Certificate, params: ValidationParams
) -> None:
    bridge_case = next(c for c in CASES if c["route"] == "bridge" and c["expected"] == "valid")
    with pytest.raises(ValidationError, match=r"no path from .* to a trust anchor"):
        PathBuilder(anchors=[anchor]).build(_leaf(bridge_case), params)
