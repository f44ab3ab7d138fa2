"""Requirement policy files: the shipped ones load, bad ones fail with the file, field and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from trustbridge.assessment.policy import (
    Decision,
    PolicyFileError,
    RequirementPolicy,
    Risk,
    shipped_policy,
)
from trustbridge.credentials.criteria import ElementKind, EvidenceKind
from trustbridge.errors import InputError

GOOD = """\
policy: test-policy
title: Test
relationship: supplier
risk: high
identity:
  min_level: itg-loa3
thresholds:
  accept: 80
  conditions: 60
characteristics:
  security:
    weight: 2
    requirements:
      - criterion: iso-iec-27001
        evidence: certificate
        mandatory: true
  safety:
    requirements:
      - criterion: iec-61508
        minimum: SIL2
        element: product
"""


def test_a_policy_reads_with_its_defaults() -> None:
    policy = RequirementPolicy.parse(GOOD, source="p.yaml")
    assert (policy.id, policy.risk, policy.min_level, policy.min_level_rank) == (
        "test-policy",
        Risk.HIGH,
        "itg-loa3",
        3,
    )
    first, second = policy.requirements
    assert first.minimum is True  # a boolean criterion needs a claim that it holds
    assert first.evidence is EvidenceKind.CERTIFICATE and first.mandatory
    assert first.max_age == timedelta(days=1095)
    assert second.minimum == "SIL2" and second.element is ElementKind.PRODUCT
    assert second.evidence is EvidenceKind.SELF_DECLARATION  # the default; the catalogue
    assert policy.characteristics[1].min_confidence == 0.5
    assert policy.suppliers is None


@pytest.mark.parametrize(
    "name",
    ["safety-component-supplier-high", "customer-test-data-medium", "component-subsupplier-medium"],
)
def test_the_shipped_policies_load(name: str) -> None:
    policy = RequirementPolicy.load(shipped_policy(name))
    assert policy.id == name


def test_the_reference_policy_names_its_supplier_policy() -> None:
    policy = RequirementPolicy.load(shipped_policy("safety-component-supplier-high"))
    assert policy.suppliers is not None
    assert policy.suppliers.policy.id == "component-subsupplier-medium"
    assert policy.suppliers.min_decision is Decision.CONDITIONS
    assert policy.suppliers.on_failure is Decision.CONDITIONS


BAD = [
    # (what, text replaced, replacement, message fragment, line)
    (
        "unknown criterion, with a close match",
        "criterion: iso-iec-27001",
        "criterion: iso-iec-27002",
        "unknown criterion",
        14,
    ),
    (
        "criterion under the wrong characteristic",
        "criterion: iec-61508",
        "criterion: iso-9001",
        "criterion iso-9001 is about reliability, not safety",
        19,
    ),
    (
        "minimum not a value of the criterion",
        "minimum: SIL2",
        "minimum: SIL7",
        "'SIL7' is not a valid value",
        20,
    ),
    (
        "contradictory thresholds",
        "accept: 80",
        "accept: 50",
        "the accept threshold (50) must be above the accept-with-conditions threshold (60)",
        8,
    ),
    (
        "unknown reference level",
        "min_level: itg-loa3",
        "min_level: loa9",
        "unknown reference level 'loa9'",
        6,
    ),
    (
        "unknown characteristic",
        "  safety:",
        "  sturdiness:",
        "violates the requirement policy schema",
        None,
    ),
    ("a threshold above 100", "conditions: 60", "conditions: 160", "160 is greater than", 9),
    ("a misspelt member", "mandatory: true", "mandatroy: true", "'mandatroy' was unexpected", 14),
    (
        "element the criterion does not apply to",
        "element: product",
        "element: person",
        "does not apply to the element kind person",
        21,
    ),
    ("not YAML", "title: Test", "title: [Test", "not valid YAML", None),
    (
        "a NaN threshold never rejects",
        "conditions: 60",
        "conditions: .nan",
        "nan is not a finite",
        9,
    ),
    ("a NaN weight", "weight: 2", "weight: .nan", "nan is not a finite number", 12),
    ("an infinite weight", "weight: 2", "weight: .inf", "inf is greater than the maximum", 12),
]


@pytest.mark.parametrize(
    ("old", "new", "message", "line"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_policy_is_refused_with_where(
    old: str, new: str, message: str | None, line: int | None
) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(PolicyFileError) as caught:
        RequirementPolicy.parse(text, source="bad.yaml")
    error = caught.value
    assert error.message.startswith("bad.yaml")
    if message is not None:
        assert message in error.message
    if line is not None:
        assert error.line == line, error.message


def test_evidence_stronger_than_a_criterion_admits_is_refused() -> None:
    text = GOOD.replace("minimum: SIL2", "minimum: SIL2\n        evidence: audit")
    with pytest.raises(PolicyFileError, match="admits only certificate as evidence"):
        RequirementPolicy.parse(text, source="bad.yaml")


def test_the_same_criterion_twice_is_refused() -> None:
    text = GOOD.replace(
        "        mandatory: true\n",
        "        mandatory: true\n      - criterion: iso-iec-27001\n",
    )
    with pytest.raises(PolicyFileError, match="criterion iso-iec-27001 is required twice"):
        RequirementPolicy.parse(text, source="bad.yaml")


def test_supplier_policies_from_files_and_inline(tmp_path: Path) -> None:
    (tmp_path / "tier2.yaml").write_text(GOOD.replace("test-policy", "tier-two"))
    main = tmp_path / "main.yaml"
    main.write_text(GOOD + "suppliers:\n  policy: tier2.yaml\n  required: 1\n")
    policy = RequirementPolicy.load(main)
    assert policy.suppliers is not None and policy.suppliers.policy.id == "tier-two"
    assert policy.suppliers.required == 1 and policy.suppliers.on_failure is Decision.REJECT

    main.write_text(GOOD + "suppliers:\n  policy: missing.yaml\n")
    with pytest.raises(PolicyFileError, match=r"supplier policy: .*cannot read the file"):
        RequirementPolicy.load(main)

    inline = GOOD + "suppliers:\n  policy:\n    policy: inline\n    title: x\n"
    with pytest.raises(PolicyFileError, match=r"\$\.suppliers\.policy.*'relationship'"):
        RequirementPolicy.parse(inline, source="inline.yaml")

    main.write_text(GOOD + "suppliers:\n  policy: main.yaml\n")
    with pytest.raises(PolicyFileError, match="cannot be its own supplier policy"):
        RequirementPolicy.load(main)


def test_unknown_shipped_policy() -> None:
    with pytest.raises(InputError, match="ships no requirement policy 'nope'"):
        shipped_policy("nope")
