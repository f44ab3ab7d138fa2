"""NIST Path Discovery Test Suite (HTTP-URI subset): path *building* through a bridge mesh.

Each case runs twice: from an unordered pool (every certificate of every ``.p7c`` bundle) and
through the URL mirror as fetcher (AIA caIssuers and SIA discovery). The default search limits
are in force, so a search that loops or explodes fails instead of hanging.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.pdts import PDTS, Pdts, verdict
from trustbridge.errors import ValidationError
from trustbridge.trust.paths import CertificatePool, MirrorFetcher, PathBuilder

pytestmark = pytest.mark.skipif(not PDTS.is_dir(), reason=f"PDTS data not found at {PDTS}")

SUITE = Pdts.load() if PDTS.is_dir() else None
CASES = list(SUITE.cases) if SUITE else []


@pytest.fixture(scope="module")
def suite() -> Pdts:
    assert SUITE is not None
    return SUITE


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_from_the_pool(case: dict[str, Any], suite: Pdts) -> None:
    builder = PathBuilder(anchors=[suite.anchor], pool=CertificatePool(suite.certificates()))
    assert verdict(builder, suite.leaf(case), suite.params(pooled=True)) == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_through_the_url_mirror(case: dict[str, Any], suite: Pdts) -> None:
    builder = PathBuilder(anchors=[suite.anchor], fetcher=MirrorFetcher(PDTS / "Hosts"))
    assert verdict(builder, suite.leaf(case), suite.params(pooled=False)) == case["expected"]


def test_an_empty_pool_names_the_missing_path(suite: Pdts) -> None:
    bridge_case = next(c for c in CASES if c["route"] == "bridge" and c["expected"] == "valid")
    with pytest.raises(ValidationError, match=r"no path from .* to a trust anchor"):
        PathBuilder(anchors=[suite.anchor]).build(
            suite.leaf(bridge_case), suite.params(pooled=False)
        )
