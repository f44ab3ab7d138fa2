"""The scoring model and the decisions, on verdicts built directly (verification is tested with
real packages in test_package.py): table-driven decisions for the reference scenario's policies,
and the invariants of the issue as properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.homes import NOW
from trustbridge.assessment import (
    Decision,
    Partner,
    PartnerEvidence,
    RequirementPolicy,
    assess,
    claim_confidence,
    shipped_policy,
)
from trustbridge.credentials.criteria import EvidenceKind
from trustbridge.credentials.model import TrustCredential, Verdict

HAYABUSA_ID = "NTRJP-3180001012345"
MUSTER_ID = "VATDE-123456789"
SAFETY = RequirementPolicy.load(shipped_policy("safety-component-supplier-high"))
CUSTOMER = RequirementPolicy.load(shipped_policy("customer-test-data-medium"))


def partner(
    organization: str = HAYABUSA_ID, level: str | None = "itg/itg-loa3", name: str = "Hayabusa"
) -> Partner:
    return Partner(organization, name, f"O={name}", "bridge" if level else None, level)


def verdict(
    criterion: str,
    value: Any,
    *,
    evidence: str = "certificate",
    element: str = "organization",
    organization: str = HAYABUSA_ID,
    issuer_level: str | None = "itg/itg-loa3",
    issued_days_ago: float = 10,
    audit_verdict: str = "pass",
    audit_days_ago: float | None = None,
    index: int = 0,
) -> Verdict:
    """A verified credential with one claim, as the verifier would return it."""
    issued = NOW - timedelta(days=issued_days_ago)
    subject: dict[str, Any] = {
        "element": element,
        "name": "subject",
        "organization": organization,
        "id": f"urn:trustbridge:org:{organization}"
        if element == "organization"
        else f"urn:example:{element}:{index}",
    }
    body: dict[str, Any] = {"kind": evidence}
    if evidence == "audit":
        dated = issued if audit_days_ago is None else NOW - timedelta(days=audit_days_ago)
        body.update(date=dated.date().isoformat(), verdict=audit_verdict, auditor="A. Auditor")
    credential = TrustCredential.model_validate(
        {
            "id": f"urn:uuid:00000000-0000-4000-8000-{index:012d}",
            "issuer": {"id": "urn:trustbridge:org:NTRJP-5010001077777", "name": "Fuji"},
            "subject": subject,
            "claims": [
                {
                    "characteristic": _CHARACTERISTIC[criterion],
                    "criterion": criterion,
                    "value": value,
                }
            ],
            "evidence": body,
            "valid_from": issued,
            "valid_until": issued + timedelta(days=3 * 365),
        }
    )
    return Verdict(
        credential=credential,
        format="vc+jwt",
        issuer_identity="O=Fuji",
        issuer_route="bridge",
        issuer_level=issuer_level,
        accredited_by=None,
        holder_bound=True,
        reasons=(),
        verified_at=NOW,
    )


_CHARACTERISTIC = {
    "iso-iec-27001": "security",
    "iec-62443-4-1": "security",
    "iec-62443-3-3": "security",
    "vulnerability-disclosure": "security",
    "iec-61508": "safety",
    "appi-processing": "privacy",
    "gdpr-processing": "privacy",
    "iso-9001": "reliability",
    "mtbf": "reliability",
    "incident-response": "resilience",
    "business-continuity": "resilience",
}


def hayabusa(*, without: tuple[str, ...] = (), **changes: dict[str, Any]) -> list[Verdict]:
    """The reference scenario's credentials about Hayabusa (step 4 of the demo)."""
    specs: dict[str, dict[str, Any]] = {
        "iso-iec-27001": {"value": True},
        "iec-62443-4-1": {"value": "ML3"},
        "iec-62443-3-3": {"value": "SL2", "evidence": "audit", "element": "system"},
        "iec-61508": {"value": "SIL2", "element": "product"},
        "appi-processing": {"value": True, "evidence": "self-declaration"},
        "mtbf": {"value": 150000.0, "evidence": "self-declaration", "element": "product"},
        "incident-response": {"value": 24, "evidence": "self-declaration"},
        "business-continuity": {"value": True, "evidence": "self-declaration"},
    }
    out = []
    for index, (criterion, spec) in enumerate(specs.items()):
        if criterion in without:
            continue
        merged = {**spec, **changes.get(criterion.replace("-", "_"), {})}
        value = merged.pop("value")
        out.append(verdict(criterion, value, index=index, **merged))
    return out


def run(
    policy: RequirementPolicy, verdicts: list[Verdict], who: Partner | None = None
) -> dict[str, Any]:
    evidence = PartnerEvidence(who or partner(), tuple(verdicts))
    return assess(policy, evidence, at=NOW, assessor="Muster").to_json()


def requirement(result: dict[str, Any], criterion: str) -> dict[str, Any]:
    return next(
        r
        for c in result["characteristics"]
        for r in c["requirements"]
        if r["criterion"] == criterion
    )


def characteristic(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in result["characteristics"] if c["characteristic"] == name)


# -- the reference scenario, table-driven --------------------------------------------------------

ISO_9001 = verdict("iso-9001", True, index=20)

CASES = [
    # (what, verdicts, partner, decision, score, a text the reasons must contain)
    (
        "Hayabusa as in the demo: reliability rests on one self-declaration",
        hayabusa(),
        partner(),
        Decision.CONDITIONS,
        80.0,
        "reliability counts as unmet: confidence 0.25",
    ),
    (
        "with an ISO 9001 certificate too",
        [*hayabusa(), ISO_9001],
        partner(),
        Decision.ACCEPT,
        100.0,
        "iso-9001: met by a certificate from Fuji (itg-loa3), 10 days old",
    ),
    (
        "the sensor's SIL certificate missing (mandatory)",
        [*hayabusa(without=("iec-61508",)), ISO_9001],
        partner(),
        Decision.REJECT,
        70.0,
        "mandatory requirements not met: iec-61508",
    ),
    (
        "SIL1 instead of SIL2: contradicts the requirement, counts for nothing",
        [*hayabusa(iec_61508={"value": "SIL1"}), ISO_9001],
        partner(),
        Decision.REJECT,
        70.0,
        "'SIL1' from Fuji is below the minimum 'SIL2'",
    ),
    (
        "ISMS only self-declared where a certificate is required",
        [*hayabusa(iso_iec_27001={"evidence": "self-declaration"}), ISO_9001],
        partner(),
        Decision.REJECT,
        None,
        "self-declaration is weaker than the certificate required",
    ),
    (
        "the plant audit older than the 730 days allowed: half credit, weights compensate",
        [*hayabusa(iec_62443_3_3={"issued_days_ago": 800}), ISO_9001],
        partner(),
        Decision.ACCEPT,
        97.0,
        "800 days old, more than the 730 allowed",
    ),
    (
        "a failed audit does not count",
        [*hayabusa(iec_62443_3_3={"audit_verdict": "fail"}), ISO_9001],
        partner(),
        Decision.CONDITIONS,
        None,
        "has the verdict fail",
    ),
    (
        "the partner's identity only at itg-loa2",
        [*hayabusa(), ISO_9001],
        partner(level="itg/itg-loa2"),
        Decision.REJECT,
        100.0,
        "below the itg-loa3 the policy requires",
    ),
    (
        "the partner's identity did not resolve",
        [*hayabusa(), ISO_9001],
        partner(level=None),
        Decision.REJECT,
        100.0,
        "did not resolve",
    ),
    (
        "nothing presented",
        [],
        partner(),
        Decision.REJECT,
        0.0,
        "no claim for iso-iec-27001",
    ),
]


@pytest.mark.parametrize(
    ("verdicts", "who", "decision", "score", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_muster_assesses_hayabusa(
    verdicts: list[Verdict], who: Partner, decision: Decision, score: float | None, reason: str
) -> None:
    result = run(SAFETY, verdicts, who)
    assert result["decision"] == decision.value, result["reasons"]
    if score is not None:
        assert result["score"] == score
    texts = [r["text"] for r in result["reasons"]]
    assert any(reason in text for text in texts), texts
    assert result["reasons"][-1]["kind"] == "decision"
    assert result["reasons"][-1]["text"].startswith(decision.value)
    if decision is Decision.ACCEPT:
        assert result["to_pass"] == [] and result["conditions"] == []
    else:
        assert result["to_pass"], "a partner not accepted is told what would pass"


def test_conditions_name_what_must_follow() -> None:
    result = run(SAFETY, hayabusa())
    assert result["conditions"] == [
        "present an ISO 9001 certificate within six months",
        "raise the confidence in reliability to 0.40 (now 0.25) with stronger or fresher evidence",
    ]
    assert result["to_pass"] == ["a certificate or an audit for iso-9001, no older than 1095 days"]
    assert requirement(result, "iso-9001")["status"] == "missing"
    assert not characteristic(result, "reliability")["met"]


def test_what_would_pass_really_passes() -> None:
    """For a rejection, presenting what ``to_pass`` names turns it into an accept."""
    missing = hayabusa(without=("iec-61508", "iso-iec-27001"))
    result = run(SAFETY, missing)
    assert result["decision"] == "reject"
    assert result["to_pass"][:2] == [
        "a certificate or an audit for iso-iec-27001, no older than 1095 days",
        "a certificate for iec-61508 of SIL2 or better about the product, no older than 1095 days",
    ]
    fixed = [
        *missing,
        verdict("iso-iec-27001", True, index=30),
        verdict("iec-61508", "SIL2", element="product", index=31),
        ISO_9001,
    ]
    assert len(result["to_pass"]) == 3
    assert run(SAFETY, fixed)["decision"] == "accept"


def test_claims_about_another_organization_are_refused_and_reported() -> None:
    foreign = verdict("iso-9001", True, organization=MUSTER_ID, index=40)
    result = run(SAFETY, [*hayabusa(), foreign])
    assert requirement(result, "iso-9001")["status"] == "missing"
    assert [r["credential"] for r in result["refused"]] == [foreign.credential.id]
    assert "not the partner" in result["refused"][0]["reason"]


def test_a_requirement_for_a_product_ignores_claims_about_the_organization() -> None:
    organization_level = verdict("iec-61508", "SIL3", element="system", index=41)
    result = run(SAFETY, [*hayabusa(without=("iec-61508",)), organization_level])
    assert requirement(result, "iec-61508")["status"] == "missing"


def test_hayabusa_assesses_muster() -> None:
    def muster(*criteria: str) -> list[Verdict]:
        out = [verdict("iso-iec-27001", True, organization=MUSTER_ID, index=50)]
        for index, criterion in enumerate(criteria, start=51):
            out.append(
                verdict(
                    criterion,
                    True,
                    evidence="self-declaration",
                    organization=MUSTER_ID,
                    index=index,
                )
            )
        return out

    who = partner(MUSTER_ID, "itg/itg-loa3", "Muster")
    result = run(CUSTOMER, muster("gdpr-processing", "vulnerability-disclosure"), who)
    assert result["decision"] == "accept"
    assert characteristic(result, "security")["confidence"] == 0.73
    # Without the disclosure policy the certificate alone leaves security at confidence 0.56,
    # below the 0.6 required: security counts as unmet, and adds nothing to the score.
    thin = run(CUSTOMER, muster("gdpr-processing"), who)
    assert characteristic(thin, "security") | {"requirements": None} == {
        "characteristic": "security",
        "weight": 2.0,
        "score": 66.7,
        "confidence": 0.56,
        "min_confidence": 0.6,
        "met": False,
        "requirements": None,
    }
    assert thin["score"] == pytest.approx(100 / 3, abs=0.05)
    assert thin["decision"] == "reject"
    assert any(
        r["text"]
        == "security counts as unmet: confidence 0.56 is below the 0.60 the policy requires"
        for r in thin["reasons"]
    )
    assert run(CUSTOMER, muster("vulnerability-disclosure"), who)["decision"] == "reject"


def test_the_confidence_formula() -> None:
    assert claim_confidence(EvidenceKind.AUDIT, "itg/itg-loa3", 0, 365) == 1.0
    assert claim_confidence(EvidenceKind.CERTIFICATE, "itg-loa2", 0, 365) == pytest.approx(0.7225)
    assert claim_confidence(EvidenceKind.SELF_DECLARATION, None, 365, 365) == pytest.approx(0.15)
    assert claim_confidence(EvidenceKind.AUDIT, "itg-loa1", 1000, 365) == pytest.approx(0.35)


# -- tier 2 -----------------------------------------------------------------------------------


def test_suppliers_enter_as_the_policy_says_and_show_as_a_tree() -> None:
    sub_ok = PartnerEvidence(
        partner("NTRJP-1111111111111", "itg/itg-loa2", "Kogane Metals"),
        (
            verdict("iso-iec-27001", True, organization="NTRJP-1111111111111", index=60),
            verdict("iso-9001", True, organization="NTRJP-1111111111111", index=61),
        ),
    )
    sub_bad = PartnerEvidence(
        partner("NTRJP-2222222222222", "itg/itg-loa2", "Tsubame Plastics"), ()
    )
    full = (*hayabusa(), ISO_9001)
    good = assess(
        SAFETY, PartnerEvidence(partner(), full, suppliers=(sub_ok,)), at=NOW, assessor="M"
    ).to_json()
    assert good["decision"] == "accept"
    assert [s["subject"]["name"] for s in good["suppliers"]] == ["Kogane Metals"]
    assert good["suppliers"][0]["decision"] == "accept"
    assert good["suppliers"][0]["policy"]["id"] == "component-subsupplier-medium"

    bad = assess(
        SAFETY,
        PartnerEvidence(partner(), full, suppliers=(sub_ok, sub_bad)),
        at=NOW,
        assessor="M",
    ).to_json()
    # The policy lowers the decision to accept-with-conditions when a supplier falls short.
    assert bad["decision"] == "accept-with-conditions"
    assert bad["score"] == good["score"]
    assert [s["decision"] for s in bad["suppliers"]] == ["accept", "reject"]
    texts = [r["text"] for r in bad["reasons"] if r["kind"] == "supplier"]
    assert any("below accept-with-conditions: Tsubame Plastics" in t for t in texts)
    assert any("Tsubame Plastics" in t for t in bad["to_pass"])


def test_suppliers_deeper_than_allowed_are_not_assessed() -> None:
    deepest = PartnerEvidence(partner("NTRJP-3333333333333", "itg/itg-loa2", "Deep"), ())
    middle = PartnerEvidence(
        partner("NTRJP-1111111111111", "itg/itg-loa2", "Middle"), (), suppliers=(deepest,)
    )
    result = assess(
        SAFETY,
        PartnerEvidence(partner(), tuple(hayabusa()), suppliers=(middle,)),
        at=NOW,
        assessor="M",
    ).to_json()
    # The tier-2 policy asks for no suppliers of its own: the deeper one is reported, not used.
    assert result["suppliers"][0]["suppliers"] == []
    assert any(
        "suppliers were presented, but the policy asks for none" in r["text"]
        for r in result["suppliers"][0]["reasons"]
    )


# -- the invariants, as properties -------------------------------------------------------------

_OPTIONS: list[tuple[str, Any, str, str]] = [
    ("iso-iec-27001", True, "certificate", "organization"),
    ("iso-iec-27001", True, "audit", "organization"),
    ("iec-62443-4-1", "ML1", "certificate", "organization"),
    ("iec-62443-4-1", "ML3", "audit", "organization"),
    ("iec-62443-3-3", "SL2", "audit", "system"),
    ("iec-62443-3-3", "SL1", "certificate", "system"),
    ("iec-61508", "SIL1", "certificate", "product"),
    ("iec-61508", "SIL3", "certificate", "product"),
    ("appi-processing", True, "self-declaration", "organization"),
    ("iso-9001", True, "certificate", "organization"),
    ("mtbf", 50000.0, "self-declaration", "product"),
    ("mtbf", 200000.0, "audit", "product"),
    ("incident-response", 72, "self-declaration", "organization"),
    ("incident-response", 12, "audit", "organization"),
    ("business-continuity", True, "self-declaration", "organization"),
]

_claims = st.lists(
    st.tuples(
        st.sampled_from(_OPTIONS),
        st.sampled_from(["itg/itg-loa1", "itg/itg-loa2", "itg/itg-loa3", None]),
        st.integers(min_value=0, max_value=1500),
    ),
    max_size=8,
)


def _verdicts(claims: list[Any], offset: int = 0) -> list[Verdict]:
    return [
        verdict(
            criterion,
            value,
            evidence=evidence,
            element=element,
            issuer_level=level,
            issued_days_ago=age,
            index=offset + i,
        )
        for i, ((criterion, value, evidence, element), level, age) in enumerate(claims)
    ]


def _scores(result: dict[str, Any]) -> list[float]:
    return [result["score"]] + [c["score"] for c in result["characteristics"]]


def _confidences(result: dict[str, Any]) -> list[float]:
    return [result["confidence"]] + [c["confidence"] for c in result["characteristics"]]


@settings(max_examples=60, deadline=None)
@given(base=_claims, extra=_claims)
def test_adding_valid_evidence_never_lowers_a_score(base: list[Any], extra: list[Any]) -> None:
    before = run(SAFETY, _verdicts(base))
    after = run(SAFETY, _verdicts(base) + _verdicts(extra, offset=100))
    assert all(a >= b for a, b in zip(_scores(after), _scores(before), strict=True))
    assert all(a >= b for a, b in zip(_confidences(after), _confidences(before), strict=True))
    assert Decision(after["decision"]).rank >= Decision(before["decision"]).rank


@settings(max_examples=40, deadline=None)
@given(
    base=_claims,
    pair=st.sampled_from(
        [
            ("iec-62443-3-3", "SL2", "system", "certificate", "audit"),
            ("iso-iec-27001", True, "organization", "certificate", "audit"),
            ("mtbf", 150000.0, "product", "self-declaration", "certificate"),
            ("mtbf", 150000.0, "product", "self-declaration", "audit"),
            ("incident-response", 24, "organization", "self-declaration", "audit"),
        ]
    ),
    level=st.sampled_from(["itg/itg-loa1", "itg/itg-loa3", None]),
    age=st.integers(min_value=0, max_value=1500),
)
def test_stronger_evidence_for_the_same_claim_never_lowers_confidence(
    base: list[Any], pair: tuple[str, Any, str, str, str], level: str | None, age: int
) -> None:
    criterion, value, element, weaker, stronger = pair
    common: dict[str, Any] = {
        "element": element,
        "issuer_level": level,
        "issued_days_ago": age,
        "index": 999,
    }
    weak = run(SAFETY, [*_verdicts(base), verdict(criterion, value, evidence=weaker, **common)])
    strong = run(SAFETY, [*_verdicts(base), verdict(criterion, value, evidence=stronger, **common)])
    assert all(s >= w for s, w in zip(_confidences(strong), _confidences(weak), strict=True))
    assert all(s >= w for s, w in zip(_scores(strong), _scores(weak), strict=True))


@settings(max_examples=30, deadline=None)
@given(claims=_claims, order=st.randoms(use_true_random=False))
def test_the_same_inputs_always_give_the_same_result(claims: list[Any], order: Any) -> None:
    verdicts = _verdicts(claims)
    shuffled = list(verdicts)
    order.shuffle(shuffled)
    assert run(SAFETY, verdicts) == run(SAFETY, shuffled) == run(SAFETY, verdicts)


def test_an_expired_claim_never_counts() -> None:
    expired = verdict("iso-9001", True, issued_days_ago=4 * 365, index=70)
    result = run(SAFETY, [*hayabusa(), expired])
    assert requirement(result, "iso-9001")["status"] == "missing"
    assert "does not hold at the assessment time" in requirement(result, "iso-9001")["reason"]


def test_an_audit_is_as_old_as_its_date_not_its_credential() -> None:
    late = verdict("iec-62443-3-3", "SL2", evidence="audit", element="system", audit_days_ago=800)
    result = run(SAFETY, [*hayabusa(without=("iec-62443-3-3",)), late])
    used = requirement(result, "iec-62443-3-3")
    assert used["status"] == "partial"
    assert used["claim"]["age_days"] == 800


def test_a_claim_below_the_minimum_lends_no_confidence() -> None:
    """A strong audit saying the MTBF is too low must not make a weak self-declaration that it
    is high enough look certain (the review's "borrowed confidence")."""
    declared = verdict("mtbf", 150000.0, evidence="self-declaration", element="product", index=80)
    contradicting = verdict("mtbf", 5000.0, evidence="audit", element="product", index=81)
    alone = run(SAFETY, [*hayabusa(without=("mtbf",)), ISO_9001, declared])
    both = run(SAFETY, [*hayabusa(without=("mtbf",)), ISO_9001, declared, contradicting])
    assert requirement(both, "mtbf")["confidence"] == requirement(alone, "mtbf")["confidence"]
    assert requirement(both, "mtbf")["confidence"] == 0.5
    assert "5000.0 from Fuji is below the minimum 100000.0" in requirement(both, "mtbf")["reason"]
    assert both["score"] == alone["score"] and both["decision"] == alone["decision"]


def test_evidence_dated_after_its_credential_does_not_count() -> None:
    """An audit "held" next year, in a credential issued now, is not fresh: it is not evidence."""
    future = verdict(
        "iec-62443-3-3",
        "SL2",
        evidence="audit",
        element="system",
        issued_days_ago=10,
        audit_days_ago=-400,
    )
    result = run(SAFETY, [*hayabusa(without=("iec-62443-3-3",)), ISO_9001, future])
    used = requirement(result, "iec-62443-3-3")
    assert used["status"] == "missing"
    assert "dated after its credential was issued" in used["reason"]


def test_the_same_supplier_twice_is_one_supplier() -> None:
    kogane = "NTRJP-1111111111111"
    supplier = PartnerEvidence(
        partner(kogane, "itg/itg-loa2", "Kogane Metals"),
        (
            verdict("iso-iec-27001", True, organization=kogane, index=90),
            verdict("iso-9001", True, organization=kogane, index=91),
        ),
    )
    assert SAFETY.suppliers is not None
    rules = replace(SAFETY.suppliers, required=2, on_failure=Decision.REJECT)
    two = replace(SAFETY, suppliers=rules)
    full = (*hayabusa(), ISO_9001)
    result = assess(
        two, PartnerEvidence(partner(), full, suppliers=(supplier, supplier)), at=NOW, assessor="M"
    ).to_json()
    assert result["decision"] == "reject"
    assert any(
        "1 supplier(s) assessed, the policy requires 2" in r["text"] for r in result["reasons"]
    )
