"""Aggregating verified credentials into a subject's trust profile."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trustbridge.credentials.criteria import Characteristic, EvidenceKind
from trustbridge.credentials.model import (
    Claim,
    Evidence,
    Issuer,
    ProfileSubject,
    TrustCredential,
    Verdict,
)
from trustbridge.credentials.profile import ProfileClaim, TrustProfile
from trustbridge.errors import InputError, NotFoundError

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SENSOR_ID = "urn:trustbridge:product:hayabusa:ps-200:0001"
OTHER_ID = "urn:trustbridge:product:hayabusa:ps-300:0007"
HAYABUSA = "NTRJP-1180001000001"
FUJI = Issuer(id="urn:trustbridge:org:NTRJP-4010001000004", name="Fuji Conformity Assessment Co.")
NORDSEE = Issuer(id="urn:trustbridge:org:NTRDE-HRB700100", name="Nordsee Certification GmbH")
SELF = Issuer(id=f"urn:trustbridge:org:{HAYABUSA}", name="Hayabusa Sensor Components K.K.")


def subject(subject_id: str = SENSOR_ID, **changes: Any) -> ProfileSubject:
    data: dict[str, Any] = {
        "id": subject_id,
        "element": "product",
        "name": "PS-200 pressure sensor",
        "organization": HAYABUSA,
        "partNumber": "PS-200",
    }
    data.update(changes)
    return ProfileSubject.model_validate({k: v for k, v in data.items() if v is not None})


def claim(criterion: str, value: Any, **extra: Any) -> Claim:
    characteristic = extra.pop("characteristic", Characteristic.SECURITY)
    return Claim.model_validate(
        {"characteristic": characteristic, "criterion": criterion, "value": value, **extra}
    )


def evidence(kind: EvidenceKind) -> Evidence:
    if kind is EvidenceKind.AUDIT:
        return Evidence.model_validate(
            {
                "kind": kind,
                "reference": "AR-2025-17",
                "auditor": "F. Tanaka",
                "date": "2025-01-10",
                "scope": "PS-200 firmware development",
                "verdict": "pass",
            }
        )
    if kind is EvidenceKind.CERTIFICATE:
        return Evidence.model_validate({"kind": kind, "reference": "CERT-62443-0042"})
    return Evidence.model_validate({"kind": kind, "statement": "We follow IEC 62443-4-1."})


def verdict(
    *claims: Claim,
    kind: EvidenceKind = EvidenceKind.CERTIFICATE,
    issuer: Issuer = FUJI,
    about: ProfileSubject | None = None,
    valid_from: datetime = AT - 30 * DAY,
    valid_until: datetime = AT + 300 * DAY,
    credential_id: str | None = None,
    format: str = "vc+jwt",
) -> Verdict:
    fields: dict[str, Any] = {
        "issuer": issuer,
        "subject": about or subject(),
        "claims": claims,
        "evidence": evidence(kind),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    if credential_id:
        fields["id"] = credential_id
    credential = TrustCredential.model_validate(fields)
    self_declared = kind is EvidenceKind.SELF_DECLARATION
    return Verdict.model_validate(
        {
            "credential": credential,
            "format": format,
            "issuer_identity": f"CN={issuer.name}",
            "issuer_route": "self" if self_declared else "bridge",
            "issuer_level": "itg-loa3",
            "accredited_by": None if self_declared else "jp-trust-list#cab-fuji",
            "holder_bound": False,
            "reasons": ("signature verified",),
            "verified_at": AT,
        }
    )


def criteria_of(profile: TrustProfile) -> list[tuple[str, str]]:
    return [(c.criterion, c.credential_id) for c in profile.claims]


# -- aggregation ------------------------------------------------------------------------------


def test_keeps_only_the_subjects_credentials() -> None:
    mine = verdict(claim("iec-62443-4-2", "SL2"), credential_id="urn:uuid:mine")
    theirs = verdict(
        claim("iso-9001", True, characteristic="reliability"),
        about=subject(OTHER_ID, name="PS-300 pressure sensor"),
        credential_id="urn:uuid:theirs",
    )

    profile = TrustProfile.from_verdicts(SENSOR_ID, [theirs, mine], at=AT)

    assert profile.subject == subject()
    assert criteria_of(profile) == [("iec-62443-4-2", "urn:uuid:mine")]


def test_a_subject_without_credentials_is_refused() -> None:
    with pytest.raises(NotFoundError, match="no verified credential is about subject"):
        TrustProfile.from_verdicts(OTHER_ID, [verdict(claim("sbom", True))], at=AT)


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "kept"),
    [
        (AT - DAY, AT + DAY, True),
        (AT, AT + DAY, True),  # validFrom is inclusive
        (AT - DAY, AT, False),  # validUntil is exclusive (VCDM 2.0: ceases to be valid)
        (AT + DAY, AT + 2 * DAY, False),
        (AT - 2 * DAY, AT - DAY, False),
    ],
)
def test_credential_validity_at(valid_from: datetime, valid_until: datetime, kept: bool) -> None:
    profile = TrustProfile.from_verdicts(
        SENSOR_ID,
        [verdict(claim("sbom", True), valid_from=valid_from, valid_until=valid_until)],
        at=AT,
    )
    assert bool(profile.claims) is kept


def test_claim_validity_narrows_the_credentials() -> None:
    credential = verdict(
        claim("sbom", True),
        claim("iec-62443-4-2", "SL2", validUntil=AT - DAY),
        claim("iec-62443-4-1", "ML3", validFrom=AT + DAY),
        claim("vulnerability-disclosure", True, validFrom=AT - 60 * DAY, validUntil=AT + DAY),
        valid_from=AT - 30 * DAY,
        valid_until=AT + 300 * DAY,
    )

    profile = TrustProfile.from_verdicts(SENSOR_ID, [credential], at=AT)

    assert [c.criterion for c in profile.claims] == ["sbom", "vulnerability-disclosure"]
    narrowed = profile.claims_for("vulnerability-disclosure")[0]
    assert narrowed.valid_from == AT - 30 * DAY  # the credential starts later than the claim
    assert narrowed.valid_until == AT + DAY  # the claim ends before the credential
    whole = profile.claims_for("sbom")[0]
    assert (whole.valid_from, whole.valid_until) == (AT - 30 * DAY, AT + 300 * DAY)


def test_a_claim_outside_its_credential_is_never_valid() -> None:
    outside = verdict(claim("sbom", True, validFrom=AT + 400 * DAY, validUntil=AT + 500 * DAY))
    assert ProfileClaim.from_verdict(outside, outside.credential.claims[0]) is None
    assert TrustProfile.from_verdicts(SENSOR_ID, [outside], at=AT + 450 * DAY).claims == ()


def test_provenance_comes_from_the_verdict() -> None:
    source = verdict(claim("iec-62443-4-2", "SL2", scope="firmware 2.x"), format="dc+sd-jwt")

    (only,) = TrustProfile.from_verdicts(SENSOR_ID, [source], at=AT).claims

    assert only.claim == source.credential.claims[0]
    assert only.evidence is EvidenceKind.CERTIFICATE
    assert only.issuer == FUJI
    assert only.credential_id == source.credential.id
    assert only.format == "dc+sd-jwt"
    assert (only.issuer_route, only.issuer_level) == ("bridge", "itg-loa3")
    assert only.accredited_by == "jp-trust-list#cab-fuji"
    assert (only.characteristic, only.value, only.scope) == ("security", "SL2", "firmware 2.x")


def test_best_prefers_audit_then_certificate_then_self_declaration() -> None:
    declared = verdict(
        claim("iec-62443-4-1", "ML4"),
        kind=EvidenceKind.SELF_DECLARATION,
        issuer=SELF,
        valid_from=AT - DAY,  # the newest, but the weakest
    )
    certified = verdict(claim("iec-62443-4-1", "ML3"), valid_from=AT - 10 * DAY)
    audited = verdict(
        claim("iec-62443-4-1", "ML2"), kind=EvidenceKind.AUDIT, valid_from=AT - 100 * DAY
    )

    profile = TrustProfile.from_verdicts(SENSOR_ID, [declared, certified, audited], at=AT)

    assert len(profile.claims_for("iec-62443-4-1")) == 3  # all kept
    best = profile.best("iec-62443-4-1")
    assert best is not None and best.evidence is EvidenceKind.AUDIT and best.value == "ML2"
    without_audit = TrustProfile.from_verdicts(SENSOR_ID, [declared, certified], at=AT)
    best = without_audit.best("iec-62443-4-1")
    assert best is not None and best.evidence is EvidenceKind.CERTIFICATE
    # strongest first within a criterion
    assert [c.evidence for c in profile.claims] == [
        EvidenceKind.AUDIT,
        EvidenceKind.CERTIFICATE,
        EvidenceKind.SELF_DECLARATION,
    ]


def test_best_among_equals_is_the_newest() -> None:
    older = verdict(claim("iec-62443-4-2", "SL1"), valid_from=AT - 200 * DAY, issuer=NORDSEE)
    newer = verdict(claim("iec-62443-4-2", "SL2"), valid_from=AT - 20 * DAY)

    for order in ([older, newer], [newer, older]):
        best = TrustProfile.from_verdicts(SENSOR_ID, order, at=AT).best("iec-62443-4-2")
        assert best is not None and best.value == "SL2" and best.issuer == FUJI


def test_best_of_an_absent_criterion_is_none() -> None:
    profile = TrustProfile.from_verdicts(SENSOR_ID, [verdict(claim("sbom", True))], at=AT)
    assert profile.best("iec-61508") is None


def test_the_same_claim_twice_is_kept_once() -> None:
    once = verdict(claim("sbom", True), claim("iec-62443-4-2", "SL2"))
    partly = once.model_copy(update={"format": "dc+sd-jwt"})

    profile = TrustProfile.from_verdicts(SENSOR_ID, [once, partly], at=AT)

    assert sorted(c.criterion for c in profile.claims) == ["iec-62443-4-2", "sbom"]


def test_by_characteristic_lists_every_characteristic_in_order() -> None:
    profile = TrustProfile.from_verdicts(
        SENSOR_ID,
        [
            verdict(
                claim("mtbf", 120000, characteristic="reliability"),
                claim("iec-62443-4-2", "SL2"),
                claim("iec-61508", "SIL2", characteristic="safety"),
            )
        ],
        at=AT,
    )

    grouped = profile.by_characteristic()

    assert list(grouped) == list(Characteristic)
    assert [c.criterion for c in grouped[Characteristic.SECURITY]] == ["iec-62443-4-2"]
    assert [c.criterion for c in grouped[Characteristic.SAFETY]] == ["iec-61508"]
    assert [c.criterion for c in grouped[Characteristic.RELIABILITY]] == ["mtbf"]
    assert grouped[Characteristic.PRIVACY] == [] and grouped[Characteristic.RESILIENCE] == []
    # the profile's claims follow the same order
    assert [c.criterion for c in profile.claims] == ["iec-62443-4-2", "iec-61508", "mtbf"]


# -- subject consistency ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "match"),
    [
        ({"name": "PS-200 sensor (renamed)"}, r"urn:uuid:first gives name .*urn:uuid:second"),
        ({"organization": "NTRDE-HRB999999"}, r"organization .*urn:uuid:second"),
    ],
    ids=["name", "organization"],
)
def test_differing_identifying_members_are_refused_naming_both_credentials(
    changed: dict[str, str], match: str
) -> None:
    first = verdict(claim("sbom", True), credential_id="urn:uuid:first")
    second = verdict(
        claim("mtbf", 100000, characteristic="reliability"),
        about=subject(**changed),
        credential_id="urn:uuid:second",
    )

    with pytest.raises(InputError, match=match):
        TrustProfile.from_verdicts(SENSOR_ID, [first, second], at=AT)


def test_optional_subject_members_are_merged_but_must_agree() -> None:
    plain = verdict(claim("sbom", True), about=subject(partNumber=None))
    serial = verdict(
        claim("mtbf", 100000, characteristic="reliability"), about=subject(serialNumber="0001")
    )

    merged = TrustProfile.from_verdicts(SENSOR_ID, [plain, serial], at=AT).subject

    assert (merged.part_number, merged.serial_number) == ("PS-200", "0001")
    other_serial = verdict(
        claim("iec-62443-4-2", "SL2"),
        about=subject(serialNumber="0002"),
        credential_id="urn:uuid:third",
    )
    with pytest.raises(InputError, match=r"serial_number '0001', credential urn:uuid:third"):
        TrustProfile.from_verdicts(SENSOR_ID, [plain, serial, other_serial], at=AT)


def test_a_profile_claim_needs_a_period() -> None:
    source = verdict(claim("sbom", True))
    with pytest.raises(InputError, match="is not after valid from"):
        ProfileClaim(
            claim=source.credential.claims[0],
            evidence=EvidenceKind.CERTIFICATE,
            issuer=FUJI,
            credential_id=source.credential.id,
            format="vc+jwt",
            issuer_route="bridge",
            issuer_level=None,
            accredited_by=None,
            valid_from=AT,
            valid_until=AT,
        )


# -- JSON -------------------------------------------------------------------------------------


def test_to_json_layout() -> None:
    certified = verdict(
        claim("iec-62443-4-2", "SL2", scope="firmware 2.x"),
        claim("mtbf", 120000.5, characteristic="reliability"),
        credential_id="urn:uuid:cert",
        valid_from=AT - 30 * DAY,
        valid_until=AT + 300 * DAY,
    )
    declared = verdict(
        claim("iec-62443-4-2", "SL3"),
        kind=EvidenceKind.SELF_DECLARATION,
        issuer=SELF,
        credential_id="urn:uuid:self",
    )

    document = TrustProfile.from_verdicts(SENSOR_ID, [declared, certified], at=AT).to_json()

    assert list(document) == ["subject", "characteristics"]
    assert document["subject"] == {
        "id": SENSOR_ID,
        "element": "product",
        "name": "PS-200 pressure sensor",
        "organization": HAYABUSA,
        "partNumber": "PS-200",
    }
    characteristics: Mapping[str, list[dict[str, Any]]] = document["characteristics"]
    assert list(characteristics) == [c.value for c in Characteristic]
    assert characteristics["safety"] == []
    assert characteristics["security"][0] == {
        "criterion": "iec-62443-4-2",
        "value": "SL2",
        "scope": "firmware 2.x",
        "evidence": "certificate",
        "issuer": "Fuji Conformity Assessment Co.",
        "issuerId": FUJI.id,
        "route": "bridge",
        "level": "itg-loa3",
        "accreditedBy": "jp-trust-list#cab-fuji",
        "validFrom": "2025-05-02T12:00:00Z",
        "validUntil": "2026-03-28T12:00:00Z",
        "credentialId": "urn:uuid:cert",
        "format": "vc+jwt",
        "best": True,
    }
    weaker = characteristics["security"][1]
    assert (weaker["credentialId"], weaker["evidence"], weaker["best"]) == (
        "urn:uuid:self",
        "self-declaration",
        False,
    )
    assert characteristics["reliability"][0]["value"] == 120000.5
    assert json.loads(json.dumps(document)) == document  # plain JSON data
