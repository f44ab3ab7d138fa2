"""Fixtures the validation tests share: the scenario PKI and a German organization identity."""

from __future__ import annotations

import pytest

from tests.pki.pkifactory import (
    IssuedIdentity,
    ScenarioPki,
    build_scenario_pki,
    issue_identity,
    organization_subject,
)
from trustbridge import oids


@pytest.fixture(scope="module")
def pki() -> ScenarioPki:
    return build_scenario_pki()


@pytest.fixture(scope="module")
def leaf(pki: ScenarioPki) -> IssuedIdentity:
    """An organization identity at de-high from the scenario's people CA."""
    return issue_identity(pki.people, organization_subject(), level=oids.DE_HIGH)
