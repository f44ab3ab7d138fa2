"""Reading trust credentials from VCDM documents, and verdicts: the quick ways give exactly what
the full ones give (the same credential, down to which fields were set, or the same refusal)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.credentials.world import isms_certificate, plant_audit, self_declaration, sensor_safety
from trustbridge.credentials import model
from trustbridge.credentials.errors import MalformedCredentialError, WrongTypeError
from trustbridge.credentials.model import Issuer, TrustCredential, Verdict, _new_verdict
from trustbridge.credentials.requests import credential_from_request
from trustbridge.credentials.status import StatusEntry, StatusPurpose

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
FUJI = Issuer(id="urn:trustbridge:org:NTRJP-5010001077777", name="Fuji Conformity Assessment Co.")
STATUS = (
    StatusEntry("https://fuji.example/status/revocation", 19978, StatusPurpose.REVOCATION),
    StatusEntry("https://fuji.example/status/suspension", 7, StatusPurpose.SUSPENSION),
)


def _document(request: dict[str, Any]) -> dict[str, Any]:
    credential = credential_from_request(request, issuer=FUJI, at=AT)
    document = credential.to_vc()
    document["credentialStatus"] = [entry.to_json() for entry in STATUS]
    return document


DOCUMENTS = [
    _document(request())
    for request in (sensor_safety, isms_certificate, plant_audit, self_declaration)
]


@contextmanager
def _full_validation() -> Iterator[None]:
    """from_vc as before the quick validation: pydantic calls every validator."""
    quick = model._QUICK_CREDENTIAL
    model._QUICK_CREDENTIAL = None
    try:
        yield
    finally:
        model._QUICK_CREDENTIAL = quick


def _state(value: object) -> object:
    """All of a value: a model's type, its fields (nested) and which were set; exact types."""
    if isinstance(value, BaseModel):
        fields = {name: _state(inner) for name, inner in value.__dict__.items()}
        return (type(value).__name__, sorted(value.model_fields_set), fields)
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_state(inner) for inner in value])
    if isinstance(value, dict):
        return ("dict", {name: _state(inner) for name, inner in value.items()})
    if isinstance(value, datetime):
        return ("datetime", repr(value), value.tzinfo is UTC)
    return (type(value).__name__, repr(value))


def _outcome(read: Callable[[], TrustCredential]) -> object:
    try:
        return ("read", _state(read()))
    except Exception as exc:  # the same refusal, typed or not
        return ("refused", type(exc).__name__, str(exc))


def _both(document: object) -> tuple[object, object]:
    quick = _outcome(lambda: TrustCredential.from_vc(document))  # type: ignore[arg-type]
    with _full_validation():
        full = _outcome(lambda: TrustCredential.from_vc(document))  # type: ignore[arg-type]
    return quick, full


def test_the_quick_validation_is_built() -> None:
    # Each Python validator it leaves out was found in the model's schema (else it is None).
    assert model._QUICK_CREDENTIAL is not None


@pytest.mark.parametrize("document", DOCUMENTS, ids=["certificate", "isms", "audit", "declared"])
def test_an_issued_document_is_read_the_quick_way_as_the_full_way(
    document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[TrustCredential | None] = []
    validated = model._validated

    def spy(fields: dict[str, Any]) -> TrustCredential | None:
        answers.append(validated(fields))
        return answers[-1]

    monkeypatch.setattr(model, "_validated", spy)
    quick, full = _both(document)
    assert answers[0] is not None  # the quick way was taken (answers[1]: the full way's)
    assert quick == full
    credential = TrustCredential.from_vc(document)
    assert credential.status == STATUS
    assert credential.valid_from.tzinfo is UTC


def _spoiled(document: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("credentialSubject", "id"), "not a uri", "is not a URI"),
        (("credentialSubject", "type"), "organization", "an organization's subject id must be"),
        (("validUntil",), "2026-06-01T12:00:00Z", "validUntil must come after validFrom"),
        (("evidence", 0, "verdict"), "pass", "evidence has no findings or verdict"),
        (("evidence", 0, "findings"), ["one"], "evidence has no findings or verdict"),
        (("credentialSubject", "claims", 0, "validFrom"), "2026-07-01T00:00:00Z", None),
        (("credentialSubject", "claims", 0, "validUntil"), "2026-05-01T00:00:00Z", None),
    ],
)
def test_each_check_the_quick_way_takes_over_still_refuses(
    path: tuple[str | int, ...], value: object, message: str | None
) -> None:
    document = copy.deepcopy(DOCUMENTS[0])
    _spoiled(document, path, value)
    if message is None:  # a claim's period: validFrom after validUntil
        _spoiled(document, ("credentialSubject", "claims", 0, "validFrom"), "2026-07-01T00:00:00Z")
        _spoiled(document, ("credentialSubject", "claims", 0, "validUntil"), "2026-05-01T00:00:00Z")
        message = "validUntil must come after validFrom"
    with pytest.raises(MalformedCredentialError, match=message):
        TrustCredential.from_vc(document)
    quick, full = _both(document)
    assert quick == full


def test_an_audit_without_date_and_a_criterion_named_twice_are_refused() -> None:
    audit = copy.deepcopy(DOCUMENTS[2])
    del audit["evidence"][0]["date"]
    with pytest.raises(MalformedCredentialError, match="audit evidence needs date"):
        TrustCredential.from_vc(audit)
    twice = copy.deepcopy(DOCUMENTS[3])
    claims = twice["credentialSubject"]["claims"]
    claims.append(dict(claims[0]))
    with pytest.raises(MalformedCredentialError, match="names each criterion once"):
        TrustCredential.from_vc(twice)
    for document in (audit, twice):
        quick, full = _both(document)
        assert quick == full


@pytest.mark.parametrize(
    "time",
    [
        "2026-06-01T12:00:00.750Z",  # microseconds: dropped, the full way
        "2026-06-01T21:00:00+09:00",  # another offset: in UTC
        "2026-06-01T12:00:00",  # no time zone: refused
        "2026-06-01",
        "1780315200",
    ],
)
def test_times_are_read_the_quick_way_as_the_full_way(time: str) -> None:
    document = copy.deepcopy(DOCUMENTS[0])
    document["validFrom"] = time
    quick, full = _both(document)
    assert quick == full


def _paths(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from _paths(inner, (*path, name))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


_VALUES: st.SearchStrategy[object] = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            "  padded  ",
            "x",
            0,
            1,
            -1,
            True,
            1.5,
            [],
            {},
            ["x"],
            ["Evidence", "AuditReport"],
            "urn:x:y",
            "not a uri",
            "https://a.example/b",
            "urn:trustbridge:org:NTRJP-3180001012345",
            "NTRJP-3180001012345",
            "organization",
            "product",
            "system",
            "pass",
            "fail",
            "iec-61508",
            "iso-iec-27001",
            "SIL2",
            "safety",
            "security",
            "2026-05-20",
            "2026-06-01T12:00:00Z",
            "2026-06-01T12:00:00.5Z",
            "2026-06-01T14:00:00+02:00",
            "2026-06-01T12:00:00",
            "2020-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
        ]
    ),
    st.text(max_size=10),
    st.integers(),
)


@settings(max_examples=600, deadline=None)
@given(st.integers(0, len(DOCUMENTS) - 1), st.data())
def test_a_changed_document_is_read_or_refused_the_quick_way_as_the_full_way(
    which: int, data: st.DataObject
) -> None:
    document = copy.deepcopy(DOCUMENTS[which])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = data.draw(st.sampled_from(paths))
        parent: Any = document
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["set", "delete", "add"]))
        # A copy: sampled_from hands out the same list and dict objects every time, and a
        # second change could put one inside itself (a cycle) or change it for later examples.
        value = copy.deepcopy(data.draw(_VALUES))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "kind", "type", "id", "element"]))] = value
        else:
            parent[path[-1]] = value
    quick, full = _both(document)
    assert quick == full


# -- verdicts ---------------------------------------------------------------------------------


def _verdict_fields(holder_jwk: dict[str, Any] | None) -> dict[str, Any]:
    credential = TrustCredential.from_vc(DOCUMENTS[0])
    return {
        "credential": credential,
        "format": "vc+jwt" if holder_jwk is None else "dc+sd-jwt",
        "issuer_identity": "CN=Fuji Conformity Assessment Co.,C=JP",
        "issuer_route": "bridge",
        "issuer_level": "itg/itg-loa3",
        "accredited_by": "Fuji accredited for iec-61508 (cab) by JP trust list",
        "disclosed": () if holder_jwk is None else ("credentialSubject.claims[0]",),
        "holder_jwk": holder_jwk,
        "reasons": ("signature verified", "status: not revoked, not suspended"),
        "verified_at": AT + timedelta(days=1),
    }


@pytest.mark.parametrize("holder_jwk", [None, {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}])
def test_a_verdict_is_the_one_pydantic_would_validate(
    holder_jwk: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert model._BUILDS  # this pydantic keeps no other state: verdicts are built directly
    fields = _verdict_fields(holder_jwk)
    built = _new_verdict(**fields)
    validated = Verdict(**fields, holder_bound=holder_jwk is not None)
    assert built == validated
    assert _state(built) == _state(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert repr(built) == repr(validated)
    assert Verdict.model_validate_json(built.model_dump_json()) == built
    assert built.model_copy(update={"issuer_level": None}).issuer_level is None
    if holder_jwk is not None:
        assert built.holder_jwk == holder_jwk and built.holder_jwk is not holder_jwk
    with pytest.raises(ValueError, match="frozen"):
        built.issuer_route = "own-scheme"
    monkeypatch.setattr(model, "_BUILDS", False)
    assert _state(_new_verdict(**fields)) == _state(validated)


@pytest.mark.parametrize(
    "types", [[{"a": 1}], ["VerifiableCredential", ["x"]], "VerifiableCredential"]
)
def test_a_type_member_that_is_no_list_of_strings_is_a_typed_refusal(types: object) -> None:
    document = copy.deepcopy(DOCUMENTS[0])
    document["type"] = types
    with pytest.raises(WrongTypeError, match="type must list VerifiableCredential"):
        TrustCredential.from_vc(document)
