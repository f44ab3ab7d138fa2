"""Assessing a partner: scores per characteristic, confidence, a decision and its reasons.

The model (README and docs/assessment.md show it with an example):

* A claim counts for a requirement when it names the requirement's criterion, is about the
  partner (its subject's organization is the partner's), is about the required kind of element,
  holds at the assessment time, its value meets the minimum, and it is not an audit whose
  verdict is ``fail`` nor evidence dated after its credential was issued. Its **credit** is 1
  when its evidence is as strong as required and it is no older than the maximum age; 0.5 when
  it falls short in either; 0 when no claim counts.
* A claim's **confidence** ``q = e * l * f``: ``e`` the evidence strength (self-declaration 0.5,
  certificate 0.85, audit 1.0); ``l`` the reference level the issuer's identity resolved to
  (itg-loa3 1.0, itg-loa2 0.85, itg-loa1 0.7, none 0.6); ``f = 1 - 0.5 * min(age / max_age, 1)``
  the freshness (1 when new, 0.5 at the maximum age and beyond). The age is counted from the
  evidence's date (an audit's), else the claim's ``validFrom``, else the credential's.
* Per requirement the best counting claim is used (highest credit, then confidence); the
  requirement's confidence is the highest ``q`` among its counting claims (all of which say the
  value is good enough: a claim below the minimum lends nothing).
* Per characteristic ``score = 100 * sum(w_r * credit_r) / sum(w_r)`` and
  ``confidence = sum(w_r * q_r) / sum(w_r)`` over its requirements with their weights ``w_r``.
  It is **met** when its confidence reaches the policy's ``min_confidence``; an unmet
  characteristic adds 0 to the overall score.
* Overall ``score = sum(W_c * score_c * met_c) / sum(W_c)`` and
  ``confidence = sum(W_c * confidence_c) / sum(W_c)`` with the characteristics' weights ``W_c``.
* Decision: **reject** when the partner's organization identity is below the policy's level, a
  mandatory requirement is not fully met, or the score is below the conditions threshold;
  **accept** when the score reaches the accept threshold, every characteristic is met and every
  requirement fully met or not mandatory; otherwise **accept-with-conditions**. Tier-2 suppliers
  are assessed with the supplier policy; too few of them, or one below the minimum decision,
  lowers the decision to the policy's ``on_failure``.

Every quantity is monotone in the evidence: adding a valid claim never lowers a credit, a
confidence or a score, and the same inputs always give the same result (claims are considered in
a fixed order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trustbridge.assessment.policy import (
    ARTICLE,
    CharacteristicPolicy,
    Decision,
    Requirement,
    RequirementPolicy,
)
from trustbridge.clock import ensure_utc
from trustbridge.credentials.criteria import ElementKind, EvidenceKind
from trustbridge.credentials.model import Claim, Verdict
from trustbridge.credentials.package import OpenedPackage, open_package
from trustbridge.credentials.verify import CredentialVerifier
from trustbridge.trust.reference import ITG

__all__ = [
    "Assessment",
    "CharacteristicResult",
    "ClaimUsed",
    "Partner",
    "PartnerEvidence",
    "Reason",
    "Refusal",
    "RequirementResult",
    "assess",
    "assess_package",
    "claim_confidence",
]

#: ``e``: how much each kind of evidence is worth.
EVIDENCE_FACTOR: Mapping[EvidenceKind, float] = {
    EvidenceKind.SELF_DECLARATION: 0.5,
    EvidenceKind.CERTIFICATE: 0.85,
    EvidenceKind.AUDIT: 1.0,
}
#: ``l``: how much the issuer's reference level is worth (rank 1..3; 0 for none).
LEVEL_FACTOR: Mapping[int, float] = {3: 1.0, 2: 0.85, 1: 0.7, 0: 0.6}
#: Credit of a claim that counts but falls short (value, evidence or age).
PARTIAL_CREDIT = 0.5


def _level_rank(level: str | None) -> int:
    """The rank of a reference level, named ``itg-loa3`` or ``itg/itg-loa3``; 0 for none."""
    if level is None:
        return 0
    name = level.rsplit("/", 1)[-1]
    return next((lv.rank for lv in ITG.levels if lv.name == name), 0)


def _level_name(level: str | None) -> str | None:
    """``itg-loa3`` for ``itg/itg-loa3`` (how the resolver names a level with its scheme)."""
    return None if level is None else level.rsplit("/", 1)[-1]


def _rfc3339(value: datetime) -> str:
    return f"{ensure_utc(value):%Y-%m-%dT%H:%M:%SZ}"


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """The organization assessed, as its identity resolved for the assessor."""

    #: ETSI EN 319 412-1 organization identifier (``NTRJP-...``).
    organization: str
    name: str
    #: RFC 4514 subject of its organization identity.
    identity: str
    #: How it resolved (``bridge``, ``trust-list``, ``own-scheme``); None when it did not.
    route: str | None
    reference_level: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "name": self.name,
            "identity": self.identity,
            "route": self.route,
            "reference_level": self.reference_level,
        }


@dataclass(frozen=True)
class Refusal:
    """A presented credential that does not count, and why."""

    source: str
    reason: str
    credential: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "credential": self.credential}


@dataclass(frozen=True)
class PartnerEvidence:
    """What a partner presented, verified: its identity, the verdicts, what was refused, and
    the same for each of its suppliers."""

    partner: Partner
    verdicts: tuple[Verdict, ...] = ()
    refused: tuple[Refusal, ...] = ()
    suppliers: tuple[PartnerEvidence, ...] = ()
    #: Where each credential came from (credential id -> file or presentation name).
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_package(cls, opened: OpenedPackage) -> PartnerEvidence:
        """What a verified presentation package shows, its suppliers' packages included."""
        return cls(
            partner=Partner(
                organization=opened.organization,
                name=opened.name,
                identity=opened.identity.subject.rfc4514_string(),
                route=opened.route,
                reference_level=_level_name(opened.reference_level),
            ),
            verdicts=opened.verdicts,
            refused=tuple(Refusal(r.source, r.reason, r.credential) for r in opened.refused),
            suppliers=tuple(cls.from_package(s) for s in opened.suppliers),
            sources=dict(opened.sources),
        )


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimUsed:
    """The claim a requirement was judged on."""

    credential: str
    value: Any
    evidence: EvidenceKind
    issuer: str
    issuer_level: str | None
    age_days: int
    confidence: float
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "value": self.value,
            "evidence": self.evidence.value,
            "issuer": self.issuer,
            "issuer_level": self.issuer_level,
            "age_days": self.age_days,
            "file": self.source,
        }


@dataclass(frozen=True)
class RequirementResult:
    requirement: Requirement
    #: ``met``, ``partial`` or ``missing``.
    status: str
    credit: float
    confidence: float
    claim: ClaimUsed | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.requirement.to_json(),
            "status": self.status,
            "credit": self.credit,
            "confidence": round(self.confidence, 2),
            "claim": None if self.claim is None else self.claim.to_json(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CharacteristicResult:
    policy: CharacteristicPolicy
    score: float
    confidence: float
    met: bool
    requirements: tuple[RequirementResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "characteristic": self.policy.characteristic.value,
            "weight": self.policy.weight,
            "score": round(self.score, 1),
            "confidence": round(self.confidence, 2),
            "min_confidence": self.policy.min_confidence,
            "met": self.met,
            "requirements": [r.to_json() for r in self.requirements],
        }


@dataclass(frozen=True)
class Reason:
    kind: str
    text: str
    criterion: str | None = None
    credential: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "criterion": self.criterion,
            "credential": self.credential,
        }


@dataclass(frozen=True)
class Assessment:
    """The result: scores, confidence, the decision, its reasons, and what would pass."""

    assessor: str
    at: datetime
    policy: RequirementPolicy
    partner: Partner
    decision: Decision
    score: float
    confidence: float
    characteristics: tuple[CharacteristicResult, ...]
    reasons: tuple[Reason, ...]
    to_pass: tuple[str, ...]
    conditions: tuple[str, ...]
    refused: tuple[Refusal, ...]
    suppliers: tuple[Assessment, ...]

    def to_json(self) -> dict[str, Any]:
        """The assessment as JSON (layout in docs/assessment.md)."""
        return {
            "version": 1,
            "assessor": self.assessor,
            "at": _rfc3339(self.at),
            "policy": self.policy.to_json(),
            "subject": self.partner.to_json(),
            "decision": self.decision.value,
            "score": round(self.score, 1),
            "confidence": round(self.confidence, 2),
            "thresholds": {"accept": self.policy.accept, "conditions": self.policy.conditions},
            "characteristics": [c.to_json() for c in self.characteristics],
            "reasons": [r.to_json() for r in self.reasons],
            "to_pass": list(self.to_pass),
            "conditions": list(self.conditions),
            "refused": [r.to_json() for r in self.refused],
            "suppliers": [s.to_json() for s in self.suppliers],
        }


# -- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """One claim of one verified credential, as the model sees it."""

    claim: Claim
    verdict: Verdict
    element: ElementKind
    evidence: EvidenceKind
    dated: datetime
    valid_from: datetime
    valid_until: datetime
    audit_failed: bool
    #: The evidence claims a date after the credential was issued: an audit not yet held.
    dated_later: bool
    source: str | None

    @property
    def credential(self) -> str:
        return self.verdict.credential.id


def claim_confidence(
    evidence: EvidenceKind, issuer_level: str | None, age_days: float, max_age_days: float
) -> float:
    """``q = e * l * f`` for one claim (see the module docstring)."""
    freshness = 1.0 - 0.5 * min(max(age_days, 0.0) / max_age_days, 1.0)
    return EVIDENCE_FACTOR[evidence] * LEVEL_FACTOR[_level_rank(issuer_level)] * freshness


def _candidates(evidence: PartnerEvidence) -> list[_Candidate]:
    out: list[_Candidate] = []
    for verdict in sorted(evidence.verdicts, key=lambda v: v.credential.id):
        credential = verdict.credential
        kind = credential.evidence.kind
        evidence_date = credential.evidence.date
        for claim in credential.claims:
            starts = [credential.valid_from] + ([claim.valid_from] if claim.valid_from else [])
            ends = [credential.valid_until] + ([claim.valid_until] if claim.valid_until else [])
            if evidence_date is not None:
                dated = datetime(
                    evidence_date.year, evidence_date.month, evidence_date.day, tzinfo=UTC
                )
            else:
                dated = claim.valid_from or credential.valid_from
            out.append(
                _Candidate(
                    claim=claim,
                    verdict=verdict,
                    element=credential.subject.element,
                    evidence=kind,
                    dated=dated,
                    valid_from=max(starts),
                    valid_until=min(ends),
                    audit_failed=credential.evidence.verdict == "fail",
                    dated_later=evidence_date is not None
                    and evidence_date > credential.valid_from.date(),
                    source=evidence.sources.get(credential.id),
                )
            )
    return out


def _judge(
    requirement: Requirement, candidate: _Candidate, at: datetime
) -> tuple[float, float, str]:
    """Credit, confidence and the reason for one candidate claim (credit 0: does not count)."""
    issuer = candidate.verdict.credential.issuer.name
    if not candidate.valid_from <= at < candidate.valid_until:
        return 0.0, 0.0, f"the claim from {issuer} does not hold at the assessment time"
    if candidate.audit_failed:
        return 0.0, 0.0, f"the audit by {issuer} has the verdict fail"
    if candidate.dated_later:
        return 0.0, 0.0, f"the evidence from {issuer} is dated after its credential was issued"
    if not requirement.accepts(candidate.claim.value):
        # A claim that contradicts the requirement supports nothing: no credit, and none of
        # its confidence goes to another claim's credit.
        value = candidate.claim.value
        return 0.0, 0.0, f"{value!r} from {issuer} is below the minimum {requirement.minimum!r}"
    age = (at - candidate.dated).total_seconds() / 86400
    max_age = requirement.max_age.days
    q = claim_confidence(candidate.evidence, candidate.verdict.issuer_level, age, max_age)
    shortfalls = []
    if not candidate.evidence.at_least(requirement.evidence):
        shortfalls.append(
            f"{candidate.evidence} is weaker than the {requirement.evidence} required"
        )
    if age > max_age:
        shortfalls.append(f"{int(age)} days old, more than the {max_age} allowed")
    level = _level_name(candidate.verdict.issuer_level) or "no reference level"
    what = f"{ARTICLE[candidate.evidence]} from {issuer} ({level}), {int(age)} days old"
    if shortfalls:
        return PARTIAL_CREDIT, q, f"partly met by {what}: " + "; ".join(shortfalls)
    return 1.0, q, f"met by {what}"


def _requirement(
    requirement: Requirement, candidates: Sequence[_Candidate], at: datetime
) -> RequirementResult:
    """The result for ``requirement`` from the candidate claims on its criterion."""
    best: tuple[float, float, str, _Candidate] | None = None
    best_q = 0.0
    ignored: list[str] = []
    for candidate in candidates:
        if requirement.element is not None and candidate.element is not requirement.element:
            continue
        credit, q, reason = _judge(requirement, candidate, at)
        if credit == 0:
            ignored.append(reason)
            continue
        best_q = max(best_q, q)
        if best is None or (credit, q) > (best[0], best[1]):
            best = (credit, q, reason, candidate)
    if best is None:
        reason = f"no claim for {requirement.id}" + (
            f" about the {requirement.element}" if requirement.element else ""
        )
        if ignored:
            reason += " counts: " + "; ".join(ignored)
        return RequirementResult(requirement, "missing", 0.0, 0.0, None, reason)
    credit, q, reason, chosen = best
    if ignored:
        reason += "; not counted: " + "; ".join(ignored)
    age = (at - chosen.dated).total_seconds() / 86400
    used = ClaimUsed(
        credential=chosen.credential,
        value=chosen.claim.value,
        evidence=chosen.evidence,
        issuer=chosen.verdict.credential.issuer.name,
        issuer_level=_level_name(chosen.verdict.issuer_level),
        age_days=int(age),
        confidence=q,
        source=chosen.source,
    )
    status = "met" if credit == 1.0 else "partial"
    return RequirementResult(requirement, status, credit, best_q, used, reason)


def _characteristic(
    policy: CharacteristicPolicy, results: Sequence[RequirementResult]
) -> CharacteristicResult:
    total = sum(r.requirement.weight for r in results)
    score = 100 * sum(r.requirement.weight * r.credit for r in results) / total
    confidence = sum(r.requirement.weight * r.confidence for r in results) / total
    return CharacteristicResult(
        policy=policy,
        score=score,
        confidence=confidence,
        met=confidence >= policy.min_confidence - 1e-9,
        requirements=tuple(results),
    )


def _overall(characteristics: Sequence[CharacteristicResult]) -> tuple[float, float]:
    total = sum(c.policy.weight for c in characteristics)
    score = sum(c.policy.weight * c.score for c in characteristics if c.met) / total
    confidence = sum(c.policy.weight * c.confidence for c in characteristics) / total
    return score, confidence


def _decide(
    policy: RequirementPolicy,
    identity_ok: bool,
    characteristics: Sequence[CharacteristicResult],
    score: float,
) -> Decision:
    if not identity_ok:
        return Decision.REJECT
    requirements = [r for c in characteristics for r in c.requirements]
    if any(r.requirement.mandatory and r.status != "met" for r in requirements):
        return Decision.REJECT
    if score < policy.conditions:
        return Decision.REJECT
    if (
        score >= policy.accept
        and all(c.met for c in characteristics)
        and all(r.status == "met" or not r.requirement.mandatory for r in requirements)
    ):
        return Decision.ACCEPT
    return Decision.CONDITIONS


def _identity(policy: RequirementPolicy, partner: Partner) -> tuple[bool, str]:
    rank = _level_rank(partner.reference_level)
    if partner.route is None:
        return False, f"the organization identity {partner.identity} did not resolve"
    if rank < policy.min_level_rank:
        level = partner.reference_level or "no reference level"
        return False, (
            f"the organization identity resolved by the {partner.route} route at {level}, "
            f"below the {policy.min_level} the policy requires"
        )
    return True, (
        f"the organization identity resolved by the {partner.route} route at "
        f"{partner.reference_level} (policy: {policy.min_level} or higher)"
    )


def assess(
    policy: RequirementPolicy,
    evidence: PartnerEvidence,
    *,
    at: datetime,
    assessor: str,
    _depth: int = 0,
) -> Assessment:
    """Assess the partner in ``evidence`` against ``policy`` at time ``at``."""
    at = ensure_utc(at)
    partner = evidence.partner
    reasons: list[Reason] = []
    identity_ok, identity_text = _identity(policy, partner)
    reasons.append(Reason("identity", identity_text))

    refused = list(evidence.refused)
    candidates = []
    for candidate in _candidates(evidence):
        subject = candidate.verdict.credential.subject
        if subject.organization != partner.organization:
            refused.append(
                Refusal(
                    candidate.source or candidate.credential,
                    f"the claim {candidate.claim.criterion} is about {subject.name} "
                    f"({subject.organization}), not the partner",
                    candidate.credential,
                )
            )
            continue
        candidates.append(candidate)

    by_criterion: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        by_criterion.setdefault(candidate.claim.criterion, []).append(candidate)
    characteristics = tuple(
        _characteristic(
            c, [_requirement(r, by_criterion.get(r.id, ()), at) for r in c.requirements]
        )
        for c in policy.characteristics
    )
    for characteristic in characteristics:
        for result in characteristic.requirements:
            reasons.append(
                Reason(
                    "requirement",
                    f"{result.requirement.id}: {result.reason}",
                    result.requirement.id,
                    None if result.claim is None else result.claim.credential,
                )
            )
        name = characteristic.policy.characteristic
        if not characteristic.met:
            reasons.append(
                Reason(
                    "characteristic",
                    f"{name} counts as unmet: confidence {characteristic.confidence:.2f} is below "
                    f"the {characteristic.policy.min_confidence:.2f} the policy requires",
                )
            )
    for refusal in refused:
        reasons.append(
            Reason("refused", f"not counted: {refusal.reason}", credential=refusal.credential)
        )
    score, confidence = _overall(characteristics)
    decision = _decide(policy, identity_ok, characteristics, score)

    suppliers: list[Assessment] = []
    if policy.suppliers is not None:
        cap, supplier_reasons, suppliers = _suppliers(policy, evidence, at, assessor, _depth)
        reasons.extend(supplier_reasons)
        decision = decision.at_most(cap)
    elif evidence.suppliers:
        reasons.append(Reason("supplier", "suppliers were presented, but the policy asks for none"))

    mandatory_missing = [
        r.requirement.id
        for c in characteristics
        for r in c.requirements
        if r.requirement.mandatory and r.status != "met"
    ]
    reasons.append(
        Reason(
            "decision",
            _decision_text(
                policy,
                decision,
                score,
                identity_ok,
                mandatory_missing,
                _shortfalls(characteristics),
            ),
        )
    )
    to_pass = (
        ()
        if decision is Decision.ACCEPT
        else _to_pass(policy, identity_ok, characteristics, suppliers)
    )
    conditions = _conditions(characteristics) if decision is Decision.CONDITIONS else ()
    return Assessment(
        assessor=assessor,
        at=at,
        policy=policy,
        partner=partner,
        decision=decision,
        score=score,
        confidence=confidence,
        characteristics=characteristics,
        reasons=tuple(reasons),
        to_pass=to_pass,
        conditions=conditions,
        refused=tuple(refused),
        suppliers=tuple(suppliers),
    )


def assess_package(
    policy: RequirementPolicy,
    package: str | Mapping[str, Any],
    *,
    verifier: CredentialVerifier,
    at: datetime,
    audience: str,
    nonce: str,
    assessor: str,
    source: str = "package",
) -> tuple[OpenedPackage, Assessment]:
    """Open a partner's presentation package with ``verifier`` (and its resolver), then assess
    it against ``policy``; supplier packages are opened as deep as the policy looks."""
    opened = open_package(
        package,
        verifier=verifier,
        resolver=verifier.resolver,
        at=at,
        audience=audience,
        nonce=nonce,
        max_depth=policy.suppliers.max_depth if policy.suppliers else 0,
        source=source,
    )
    return opened, assess(policy, PartnerEvidence.from_package(opened), at=at, assessor=assessor)


def _decision_text(
    policy: RequirementPolicy,
    decision: Decision,
    score: float,
    identity_ok: bool,
    mandatory_missing: Sequence[str],
    shortfalls: Sequence[str],
) -> str:
    where = (
        f"score {score:.1f} (accept from {policy.accept:g}, "
        f"accept-with-conditions from {policy.conditions:g})"
    )
    if not identity_ok:
        return f"{decision}: the partner's identity does not meet the policy; {where}"
    if mandatory_missing:
        missing = ", ".join(mandatory_missing)
        return f"{decision}: mandatory requirements not met: {missing}; {where}"
    if decision is Decision.CONDITIONS and shortfalls:
        return f"{decision}: {where}; not accepted outright: {', '.join(shortfalls)}"
    return f"{decision}: {where}"


def _shortfalls(characteristics: Sequence[CharacteristicResult]) -> list[str]:
    out = [f"{c.policy.characteristic} unmet" for c in characteristics if not c.met]
    out += [
        f"{r.requirement.id} {r.status}"
        for c in characteristics
        for r in c.requirements
        if r.status != "met"
    ]
    return out


def _suppliers(
    policy: RequirementPolicy,
    evidence: PartnerEvidence,
    at: datetime,
    assessor: str,
    depth: int,
) -> tuple[Decision, list[Reason], list[Assessment]]:
    assert policy.suppliers is not None
    rules = policy.suppliers
    reasons: list[Reason] = []
    results: list[Assessment] = []
    if depth + 1 > rules.max_depth and evidence.suppliers:
        reasons.append(
            Reason("supplier", f"suppliers below depth {rules.max_depth} are not assessed")
        )
    else:
        for supplier in sorted(evidence.suppliers, key=lambda s: s.partner.organization):
            results.append(
                assess(rules.policy, supplier, at=at, assessor=assessor, _depth=depth + 1)
            )
    cap = Decision.ACCEPT
    failing = [r for r in results if r.decision.rank < rules.min_decision.rank]
    for result in results:
        reasons.append(
            Reason(
                "supplier",
                f"supplier {result.partner.name}: {result.decision} "
                f"(score {result.score:.1f}) under {rules.policy.id}",
            )
        )
    # Distinct organizations: the same supplier twice is still one supplier.
    distinct = len({r.partner.organization for r in results})
    if distinct < rules.required:
        cap = rules.on_failure
        reasons.append(
            Reason(
                "supplier",
                f"{distinct} supplier(s) assessed, the policy requires {rules.required}: "
                f"decision at most {rules.on_failure}",
            )
        )
    if failing:
        cap = rules.on_failure
        names = ", ".join(r.partner.name for r in failing)
        reasons.append(
            Reason(
                "supplier",
                f"below {rules.min_decision}: {names}: decision at most {rules.on_failure}",
            )
        )
    return cap, reasons, results


def _conditions(characteristics: Sequence[CharacteristicResult]) -> tuple[str, ...]:
    out: list[str] = []
    for characteristic in characteristics:
        for result in characteristic.requirements:
            if result.status != "met":
                out.append(
                    result.requirement.condition or f"present {result.requirement.describe()}"
                )
        if not characteristic.met:
            out.append(
                f"raise the confidence in {characteristic.policy.characteristic} to "
                f"{characteristic.policy.min_confidence:.2f} (now {characteristic.confidence:.2f}) "
                "with stronger or fresher evidence"
            )
    return tuple(out)


def _to_pass(
    policy: RequirementPolicy,
    identity_ok: bool,
    characteristics: Sequence[CharacteristicResult],
    suppliers: Sequence[Assessment],
) -> tuple[str, ...]:
    """What the partner could present to be accepted: the identity, every mandatory requirement
    not met, then the requirements that raise the score most, until the model says accept."""
    steps: list[str] = []
    if not identity_ok:
        steps.append(f"an organization identity that resolves at {policy.min_level} or higher")
    current = list(characteristics)

    def improved(
        state: Sequence[CharacteristicResult], index: int, requirement: Requirement
    ) -> CharacteristicResult:
        """Characteristic ``index`` of ``state`` with ``requirement`` met by ideal evidence."""
        ideal = claim_confidence(requirement.evidence, ITG.levels[-1].name, 0, 1)
        owner = state[index]
        results = [
            replace(r, status="met", credit=1.0, confidence=max(r.confidence, ideal))
            if r.requirement is requirement
            else r
            for r in owner.requirements
        ]
        return _characteristic(owner.policy, results)

    def decision_of(state: Sequence[CharacteristicResult]) -> Decision:
        return _decide(policy, True, state, _overall(state)[0])

    pending = [
        (i, r.requirement)
        for i, c in enumerate(current)
        for r in c.requirements
        if r.status != "met"
    ]
    # Mandatory ones first, always; then the one that raises the score most, until accepted.
    for index, requirement in [p for p in pending if p[1].mandatory]:
        current[index] = improved(current, index, requirement)
        steps.append(requirement.describe())
    pending = [p for p in pending if not p[1].mandatory]
    while decision_of(current) is not Decision.ACCEPT and pending:

        def gain(item: tuple[int, Requirement]) -> tuple[float, float]:
            trial = list(current)
            trial[item[0]] = improved(current, *item)
            return _overall(trial)

        best = max(pending, key=gain)  # max keeps the first of equals: policy order
        pending.remove(best)
        current[best[0]] = improved(current, *best)
        steps.append(best[1].describe())
    if policy.suppliers is not None:
        rules = policy.suppliers
        failing = [s.partner.name for s in suppliers if s.decision.rank < rules.min_decision.rank]
        if failing:
            steps.append(
                f"suppliers that reach {rules.min_decision} under {rules.policy.id} "
                f"(now below: {', '.join(failing)})"
            )
        distinct = len({s.partner.organization for s in suppliers})
        if distinct < rules.required:
            steps.append(
                f"{rules.required - distinct} more supplier presentation(s) that pass "
                f"{rules.policy.id}"
            )
    if decision_of(current) is not Decision.ACCEPT:
        for characteristic in current:
            if not characteristic.met:
                steps.append(
                    f"stronger evidence for {characteristic.policy.characteristic}: even fully "
                    f"met it reaches confidence {characteristic.confidence:.2f} of "
                    f"{characteristic.policy.min_confidence:.2f}"
                )
    return tuple(steps)
