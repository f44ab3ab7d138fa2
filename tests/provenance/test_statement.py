"""Lifecycle statements: the component as subject, event details, canonical payloads, bundles."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.provenance import (
    DIGEST,
    HAYABUSA,
    MUSTER,
    SERIAL,
    E,
    World,
    at,
    details_for,
    firmware,
    party,
    sign,
)
from trustbridge.provenance import (
    PREDICATE_TYPE,
    Component,
    LifecycleEvent,
    MalformedStatementError,
    SignedStatement,
    build_statement,
    parse_statement,
    sign_statement,
)
from trustbridge.provenance.dsse import Envelope, EnvelopeSignature
from trustbridge.provenance.statement import (
    BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
    STATEMENT_TYPE,
    keyid_of,
    validate_details,
)


def _payload(w: World, event: LifecycleEvent = E.TESTED, **changes: Any) -> bytes:
    options: dict[str, Any] = {
        "details": details_for(w, event),
        "previous": None,
        "claimed_time": at(3),
    }
    options.update(changes)
    return build_statement(changes.pop("component", w.component), event, **options)


def _tampered(payload: bytes, change: Any) -> bytes:
    data = json.loads(payload)
    change(data)
    return json.dumps(data).encode()


# -- the component ------------------------------------------------------------------------------


def test_component_with_a_certificate_is_named_by_its_uri_and_certificate(w: World) -> None:
    component = w.component
    assert component.id == SERIAL
    assert (
        component.uri == "urn:trustbridge:machine:Hayabusa-Sensor-Components-K.K.-HPS-200:" + SERIAL
    )
    der = w.sensor.certificate.public_bytes(Encoding.DER)
    assert component.digest == hashlib.sha256(der).hexdigest()
    assert component.subject() == {
        "name": component.uri,
        "digest": {"sha256": component.digest},
        "annotations": {
            "serialNumber": SERIAL,
            "model": "HPS-200",
            "manufacturer": HAYABUSA,
            "manufacturerIdentifier": "NTRJP-3180001012345",
            "globalAssetId": "https://hayabusa.example/aas/HPS200-000001",
        },
    }


def test_component_without_a_certificate_gets_a_urn() -> None:
    component = Component(serial_number="SN 7/1", model="HPS:200", manufacturer=HAYABUSA)
    assert component.uri == (
        "urn:trustbridge:component:hayabusa-sensor-components-k.k.:HPS%3A200:SN%207%2F1"
    )
    assert component.digest == hashlib.sha256(component.uri.encode()).hexdigest()
    assert component.subject()["annotations"] == {
        "serialNumber": "SN 7/1",
        "model": "HPS:200",
        "manufacturer": HAYABUSA,
    }


def test_component_must_fit_its_certificate(w: World) -> None:
    with pytest.raises(MalformedStatementError, match="names serial number 'HPS200-000001'"):
        Component("HPS200-000002", "HPS-200", HAYABUSA, certificate=w.sensor.certificate)
    with pytest.raises(MalformedStatementError, match="names manufacturer"):
        Component(SERIAL, "HPS-200", MUSTER, certificate=w.sensor.certificate)
    with pytest.raises(MalformedStatementError, match="serial number must be a non-empty"):
        Component(" ", "HPS-200", HAYABUSA)


# -- building and parsing -----------------------------------------------------------------------


@pytest.mark.parametrize("event", list(LifecycleEvent))
def test_round_trip_of_every_event(w: World, event: LifecycleEvent) -> None:
    payload = _payload(w, event)
    # Canonical JSON: sorted keys, no whitespace, UTF-8.
    assert (
        payload
        == json.dumps(
            json.loads(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    data = json.loads(payload)
    assert data["_type"] == STATEMENT_TYPE
    assert (
        data["predicateType"] == PREDICATE_TYPE == "https://trustbridge.dev/provenance/lifecycle/v1"
    )
    assert data["predicate"]["event"] == event.value
    statement = parse_statement(payload, source="test")
    assert statement.event is event
    assert statement.component == w.component
    assert statement.details == details_for(w, event)
    assert statement.previous is None
    assert statement.claimed_time == at(3)
    assert statement.subject == w.component.subject()


def test_previous_is_the_digest_of_the_previous_payload(w: World) -> None:
    first = sign(
        w.cell, E.MANUFACTURED, details={}, previous=None, component=w.component, claimed=at(1)
    )
    payload = _payload(w, E.TESTED, previous=first)
    assert parse_statement(payload, source="test").previous == (
        hashlib.sha256(first.payload).hexdigest()
    )
    assert first.digest == hashlib.sha256(first.payload).hexdigest()


def test_previous_about_another_component_is_refused(w: World) -> None:
    other = Component("HPS200-000002", "HPS-200", HAYABUSA)
    first = sign(w.cell, E.MANUFACTURED, details={}, previous=None, component=other, claimed=at(1))
    with pytest.raises(MalformedStatementError, match="is about HPS200-000002, not HPS200-000001"):
        _payload(w, E.TESTED, previous=first)


BAD_DETAILS: list[tuple[LifecycleEvent, Any, str]] = [
    (E.MANUFACTURED, {"site": "Nagoya"}, "unknown member"),
    (E.MANUFACTURED, [], "must be an object"),
    (E.TESTED, {}, "lacks result"),
    (E.TESTED, {"result": "ok"}, "neither 'pass' nor 'fail'"),
    (E.TESTED, {"result": "pass", "report_sha256": "AB" * 32}, "64 lowercase hex"),
    (E.TESTED, {"result": "pass", "station": ""}, "station must be a non-empty string"),
    (E.SHIPPED, {"recipient": {"name": MUSTER}}, "recipient lacks identifier"),
    (E.SHIPPED, {"recipient": "Muster"}, "recipient must be an object"),
    (E.SHIPPED, {"to": party(MUSTER, "x")}, "lacks recipient"),
    (E.RECEIVED, {"sender": party(HAYABUSA, "x"), "note": "y"}, "unknown member"),
    (
        E.INTEGRATED,
        {"product": {"serial_number": "1", "model": "m", "manufacturer": "x"}},
        "product lacks uri",
    ),
    (
        E.INTEGRATED,
        {"product": {"serial_number": "1", "model": "m", "manufacturer": "x", "uri": "no uri"}},
        "not an absolute URI",
    ),
    (E.FIRMWARE_INSTALLED, {"software": firmware()["software"]}, "lacks sbom"),
    (
        E.FIRMWARE_UPDATED,
        {"software": {"name": "fw", "version": "1", "sha256": "xyz"}, "sbom": {"sha256": DIGEST}},
        "software sha256 must be a SHA-256",
    ),
    (
        E.FIRMWARE_UPDATED,
        {"software": firmware()["software"], "sbom": {"uri": "https://x.example/s"}},
        "sbom lacks sha256",
    ),
]


@pytest.mark.parametrize(("event", "details", "message"), BAD_DETAILS)
def test_bad_details_are_refused_on_build(
    w: World, event: LifecycleEvent, details: Any, message: str
) -> None:
    with pytest.raises(MalformedStatementError, match=message):
        build_statement(w.component, event, details=details, previous=None, claimed_time=at(1))


@pytest.mark.parametrize(("event", "details", "message"), BAD_DETAILS)
def test_bad_details_are_refused_on_parse(
    w: World, event: LifecycleEvent, details: Any, message: str
) -> None:
    good = _payload(w, event)

    def swap(data: dict[str, Any]) -> None:
        data["predicate"]["details"] = details

    with pytest.raises(MalformedStatementError, match=message) as caught:
        parse_statement(_tampered(good, swap), source="statement.json")
    assert caught.value.message.startswith("statement.json: ")


def test_details_are_copied_not_shared() -> None:
    details = {"result": "pass"}
    checked = validate_details(E.TESTED, details)
    assert checked == details and checked is not details


def _set(path: tuple[str | int, ...], value: Any) -> Any:
    def change(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(("_type",), "https://in-toto.io/Statement/v0.1"), "_type"),
        (_set(("predicateType",), "https://slsa.dev/provenance/v1"), "predicateType"),
        (_set(("predicate", "event"), "scrapped"), "unknown lifecycle event 'scrapped'"),
        (_set(("predicate", "previous"), "abc"), "previous must be a SHA-256"),
        (_set(("predicate", "claimed_time"), "2026-06-04T00:00:00"), "has no time zone"),
        (_set(("predicate", "claimed_time"), "yesterday"), "not an ISO 8601"),
        (_set(("subject", 0, "digest", "sha256"), DIGEST), "subject is not the predicate's"),
        (
            _set(("subject", 0, "annotations", "serialNumber"), "X"),
            "subject is not the predicate's",
        ),
        (_set(("predicate", "component", "uri"), "urn:x:y"), "is not the component's URI"),
        (_set(("predicate", "component", "certificate"), "AAAA"), "not a DER certificate"),
        (_set(("predicate", "component", "model"), 5), "model must be a non-empty string"),
        (lambda d: d["subject"].append(d["subject"][0]), "exactly one subject"),
        (lambda d: d.pop("predicate"), "lacks predicate"),
        (lambda d: d["predicate"].update(extra=1), "unknown member"),
    ],
)
def test_malformed_statements_are_refused(w: World, change: Any, message: str) -> None:
    with pytest.raises(MalformedStatementError, match=message):
        parse_statement(_tampered(_payload(w), change), source="test")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b'{"_type": 1, "_type": 2}', "duplicate"),
        (b"[]", "must be an object"),
        (b" " * (64 * 1024 + 1), "larger than"),
    ],
)
def test_payloads_that_are_not_json_objects(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedStatementError, match=message):
        parse_statement(payload, source="test")


# -- signed bundles -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(w: World) -> SignedStatement:
    return sign_statement(_payload(w), w.station.identity.signer, w.station.chain)


def test_bundle_json_round_trip(w: World, signed: SignedStatement) -> None:
    data = signed.to_json()
    assert data["mediaType"] == BUNDLE_MEDIA_TYPE
    assert data["dsseEnvelope"]["payloadType"] == PAYLOAD_TYPE
    assert data["dsseEnvelope"]["signatures"][0]["keyid"] == keyid_of(w.station.certificate)
    assert (
        keyid_of(w.station.certificate)
        == hashlib.sha256(w.station.certificate.public_bytes(Encoding.DER)).hexdigest()
    )
    x5c = data["verificationMaterial"]["x5c"]
    assert [base64.b64decode(c) for c in x5c] == [
        c.public_bytes(Encoding.DER) for c in w.station.chain
    ]
    assert data["verificationMaterial"]["timestamp"] is None
    again = SignedStatement.from_json(json.loads(json.dumps(data)), source="bundle")
    assert again == signed
    assert again.digest == signed.digest == hashlib.sha256(signed.payload).hexdigest()
    assert SignedStatement.from_bytes(signed.to_bytes(), source="bundle") == signed
    assert signed.statement.event is E.TESTED


def test_bundle_carries_a_timestamp(signed: SignedStatement) -> None:
    stamped = replace(signed, timestamp=b"\x30\x03\x02\x01\x01")
    data = stamped.to_json()
    assert data["verificationMaterial"]["timestamp"] == "MAMCAQE="
    assert SignedStatement.from_json(data, source="bundle").timestamp == stamped.timestamp
    # The timestamp is not part of the statement: its digest does not change.
    assert stamped.digest == signed.digest


def _bundle(signed: SignedStatement, change: Any) -> Any:
    data = json.loads(signed.to_bytes())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(("mediaType",), "application/json"), "mediaType"),
        (_set(("verificationMaterial", "x5c"), []), "x5c must be a non-empty list"),
        (_set(("verificationMaterial", "x5c"), ["AAAA"]), "x5c entry 0 is not a DER"),
        (_set(("verificationMaterial", "timestamp"), "%%"), "timestamp is not base64"),
        (_set(("dsseEnvelope", "signatures", 0, "keyid"), "00" * 32), "keyid 0000"),
        (_set(("dsseEnvelope", "payloadType"), "application/json"), "payload type"),
        (_set(("dsseEnvelope", "payload"), "%%"), "payload is not base64"),
        (
            lambda d: d["dsseEnvelope"]["signatures"].append(d["dsseEnvelope"]["signatures"][0]),
            "exactly one signature",
        ),
        (lambda d: d.pop("verificationMaterial"), "lacks verificationMaterial"),
    ],
)
def test_malformed_bundles_are_refused(signed: SignedStatement, change: Any, message: str) -> None:
    with pytest.raises(MalformedStatementError, match=message) as caught:
        SignedStatement.from_json(_bundle(signed, change), source="bundle.json")
    assert "bundle.json" in caught.value.message


def test_bundle_bytes_must_be_json() -> None:
    with pytest.raises(MalformedStatementError, match=r"bundle\.json: the bundle is not JSON"):
        SignedStatement.from_bytes(b"{nope", source="bundle.json")


def test_signing_refuses_a_key_that_is_not_the_certificates(w: World) -> None:
    with pytest.raises(MalformedStatementError, match="is not the key of the certificate"):
        sign_statement(_payload(w), w.qa.identity.signer, w.station.chain)
    with pytest.raises(MalformedStatementError, match="chain is empty"):
        sign_statement(_payload(w), w.station.identity.signer, [])


def test_signing_refuses_a_payload_that_is_not_a_statement(w: World) -> None:
    with pytest.raises(MalformedStatementError, match="statement to sign"):
        sign_statement(b'{"_type":"x"}', w.station.identity.signer, w.station.chain)


def test_bundle_needs_exactly_one_signature_by_its_leaf(w: World, signed: SignedStatement) -> None:
    two = Envelope(PAYLOAD_TYPE, signed.payload, signed.envelope.signatures * 2)
    with pytest.raises(MalformedStatementError, match="exactly one signature"):
        SignedStatement(two, signed.chain)
    other = Envelope(
        PAYLOAD_TYPE, signed.payload, (EnvelopeSignature("station", signed.signature),)
    )
    with pytest.raises(MalformedStatementError, match="keyid"):
        SignedStatement(other, signed.chain)
