"""Verifying a component's chain of statements at their trusted times, with a real resolver."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.pki.pkifactory import issue_identity
from tests.provenance import (
    HAYABUSA,
    HAYABUSA_ID,
    MUSTER,
    MUSTER_ID,
    REVOKED_AT,
    SERIAL,
    Actor,
    ChainBuilder,
    E,
    World,
    at,
    details_for,
    happy,
    sign,
)
from trustbridge._canonical import canonical_json
from trustbridge.errors import InputError
from trustbridge.pki.profiles import OrganizationSubject, Purpose, SubjectKind
from trustbridge.provenance import (
    Component,
    LifecycleError,
    LoggedStatement,
    MalformedStatementError,
    ProvenanceError,
    RevokedSignerError,
    SignedStatement,
    SignerNotAllowedError,
    TamperedStatementError,
    UntrustedSignerError,
    build_statement,
    sign_statement,
    verify_chain,
    verify_statement,
)
from trustbridge.provenance.dsse import Envelope, EnvelopeSignature
from trustbridge.provenance.lifecycle import Organization
from trustbridge.provenance.statement import PAYLOAD_TYPE, keyid_of
from trustbridge.provenance.verify import (
    InvalidStatementError,
    NoStatementsError,
    OutOfOrderError,
    ProvenanceReport,
    SubjectMismatchError,
)


@pytest.fixture(scope="module")
def chain(w: World) -> list[LoggedStatement]:
    return happy(w)


def verify(w: World, records: list[LoggedStatement], component: str = SERIAL) -> ProvenanceReport:
    return verify_chain(records, component=component, resolve=w.resolve)


def refused(
    w: World, records: list[LoggedStatement], error: type[ProvenanceError], match: str
) -> ProvenanceReport:
    report = verify(w, records)
    assert not report.valid
    assert report.failures
    with pytest.raises(error, match=match):
        report.require()
    return report


def _with_envelope(record: LoggedStatement, envelope: Envelope) -> LoggedStatement:
    return replace(record, statement=SignedStatement(envelope, record.statement.chain))


# -- the happy chain ----------------------------------------------------------------------------


def test_the_whole_chain_verifies(w: World, chain: list[LoggedStatement]) -> None:
    report = verify(w, chain)
    assert report.valid, report.failures
    report.require()
    assert [e.event for e in report.timeline] == [
        E.MANUFACTURED,
        E.FIRMWARE_INSTALLED,
        E.TESTED,
        E.SHIPPED,
        E.RECEIVED,
        E.INTEGRATED,
        E.FIRMWARE_UPDATED,
        E.FIRMWARE_UPDATED,
    ]
    assert all(e.ok and e.route == "own-scheme" for e in report.timeline)
    assert {e.holder_level for e in report.timeline} == {"de/de-high"}
    kinds = [e.signer_kind for e in report.timeline]
    assert kinds[0] is SubjectKind.MACHINE and kinds[3] is SubjectKind.ORGANIZATION
    assert report.timeline[3].organization == Organization(HAYABUSA, HAYABUSA_ID)
    assert report.timeline[4].organization == Organization(MUSTER, MUSTER_ID)
    assert [e.time for e in report.timeline] == [r.time for r in chain]
    assert [e.digest for e in report.timeline] == [r.digest for r in chain]
    assert report.timeline[2].details["result"] == "pass"


def test_report_as_json(w: World, chain: list[LoggedStatement]) -> None:
    data = json.loads(json.dumps(verify(w, chain).to_json()))
    assert data["component"] == SERIAL and data["valid"] is True and data["failures"] == []
    first = data["timeline"][0]
    assert first["event"] == "manufactured"
    assert first["time"] == "2026-06-02T00:00:00Z" and first["time_source"] == "log"
    assert first["log"] == "hayabusa.example/log" and first["index"] == 0
    assert first["signer_kind"] == "machine" and first["ok"] is True
    assert data["timeline"][3]["organization"] == {"name": HAYABUSA, "identifier": HAYABUSA_ID}


def test_input_order_does_not_matter(w: World, chain: list[LoggedStatement]) -> None:
    shuffled = [chain[i] for i in (4, 0, 7, 2, 6, 1, 5, 3)]
    assert shuffled != chain
    report = verify(w, shuffled)
    assert report.valid
    assert [e.digest for e in report.timeline] == [r.digest for r in chain]


def test_a_statement_given_twice_counts_once(w: World, chain: list[LoggedStatement]) -> None:
    imported = replace(chain[2], log="muster.example/log", index=0, time=at(9))
    report = verify(w, [*chain, imported])
    assert report.valid
    assert len(report.timeline) == len(chain)


def test_the_component_may_be_named_by_its_uri(w: World, chain: list[LoggedStatement]) -> None:
    assert verify(w, chain, component=w.component.uri).valid


def test_claimed_times_are_only_shown(w: World) -> None:
    # The signers claim times in reverse order, far from the trusted ones: nothing changes.
    first = sign(
        w.cell, E.MANUFACTURED, details={}, previous=None, component=w.component, claimed=at(300)
    )
    second = sign(
        w.station,
        E.TESTED,
        details=details_for(w, E.TESTED),
        previous=first,
        component=w.component,
        claimed=at(-300),
    )
    records = [LoggedStatement(first, at(1), "tsa"), LoggedStatement(second, at(2), "tsa")]
    report = verify(w, records)
    assert report.valid
    assert report.timeline[1].claimed_time == at(-300)
    assert report.timeline[1].time == at(2) and report.timeline[1].time_source == "tsa"


def test_ties_are_broken_by_log_index(w: World, chain: list[LoggedStatement]) -> None:
    same_time = [replace(r, time=at(1)) for r in chain[:3]]
    assert verify(w, list(reversed(same_time))).valid
    swapped = [replace(same_time[0], index=5), *same_time[1:]]
    refused(w, swapped, OutOfOrderError, "logged after it")


# -- what breaks it -----------------------------------------------------------------------------


def test_an_empty_chain_is_invalid(w: World) -> None:
    report = refused(w, [], NoStatementsError, "HPS200-000001: no provenance statements")
    assert report.timeline == ()
    assert report.to_json()["valid"] is False


def test_a_gap(w: World, chain: list[LoggedStatement]) -> None:
    without_test = chain[:2] + chain[3:]
    report = refused(
        w, without_test, LifecycleError, r"a gap: HPS200-000001: shipped .* previous points to"
    )
    assert [e.ok for e in report.timeline] == [True, True, False, *([True] * 4)]
    assert "but the statement before is firmware-installed" in report.failures[0]
    # The lifecycle forbids what remains, too.
    assert any("shipped cannot follow firmware-installed" in f for f in report.failures)


def test_a_chain_that_does_not_start_at_the_start(w: World, chain: list[LoggedStatement]) -> None:
    refused(w, chain[1:], LifecycleError, "a gap: .* but the statement before is nothing")


def test_reordered_times(w: World, chain: list[LoggedStatement]) -> None:
    reordered = list(chain)
    reordered[1], reordered[2] = (
        replace(chain[1], time=chain[2].time),
        replace(chain[2], time=chain[1].time),
    )
    report = refused(w, reordered, OutOfOrderError, "tested .* which was logged after it")
    assert any("tested cannot follow manufactured" not in f for f in report.failures)


def test_a_forbidden_transition(w: World) -> None:
    records = ChainBuilder(w).add(w.cell, E.MANUFACTURED).add(w.hayabusa, E.SHIPPED).records
    refused(w, records, LifecycleError, "HPS200-000001: shipped cannot follow manufactured$")


def test_a_failed_test_then_shipped(w: World) -> None:
    records = (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.station, E.TESTED, {"result": "fail"})
        .add(w.hayabusa, E.SHIPPED)
        .records
    )
    refused(w, records, LifecycleError, "shipped cannot follow a failed test")


def test_a_failed_test_retested_then_shipped(w: World) -> None:
    records = (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.station, E.TESTED, {"result": "fail"})
        .add(w.station, E.TESTED, {"result": "pass"})
        .add(w.hayabusa, E.SHIPPED)
        .records
    )
    assert verify(w, records).valid


def test_wrong_signer_kind(w: World) -> None:
    records = ChainBuilder(w).add(w.station, E.MANUFACTURED).records
    refused(w, records, SignerNotAllowedError, "manufactured must be signed by a machine")


def test_wrong_signer_organization(w: World) -> None:
    records = ChainBuilder(w).add(w.cell, E.MANUFACTURED).add(w.line, E.TESTED).records
    refused(w, records, SignerNotAllowedError, f"belongs to {MUSTER}")


def test_same_name_other_identifier(w: World) -> None:
    records = (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.station, E.TESTED)
        .add(w.rogue, E.SHIPPED)
        .records
    )
    refused(w, records, SignerNotAllowedError, "NTRJP-9999999999999")


def test_received_by_someone_not_named(w: World, chain: list[LoggedStatement]) -> None:
    records = ChainBuilder(w).add(w.cell, E.MANUFACTURED).add(w.station, E.TESTED)
    records.add(w.hayabusa, E.SHIPPED).add(w.station, E.RECEIVED)
    refused(w, records.records, SignerNotAllowedError, "not to the recipient")


def test_a_tampered_payload(w: World, chain: list[LoggedStatement]) -> None:
    record = chain[2]
    data = json.loads(record.statement.payload)
    data["predicate"]["details"]["station"] = "EOL-2"
    tampered = _with_envelope(
        record,
        Envelope(PAYLOAD_TYPE, canonical_json(data), record.statement.envelope.signatures),
    )
    records = [*chain[:2], tampered, *chain[3:]]
    report = refused(w, records, TamperedStatementError, "the DSSE signature does not verify")
    assert report.timeline[2].event is None and not report.timeline[2].ok
    # What follows no longer links to a statement that holds.
    assert "a gap" in report.timeline[3].failures[0]


def test_a_tampered_signature(w: World, chain: list[LoggedStatement]) -> None:
    record = chain[3]
    signature = record.statement.envelope.signatures[0]
    flipped = bytearray(signature.sig)
    flipped[-1] ^= 1
    tampered = _with_envelope(
        record,
        Envelope(
            PAYLOAD_TYPE,
            record.statement.payload,
            (EnvelopeSignature(signature.keyid, bytes(flipped)),),
        ),
    )
    records = [*chain[:3], tampered, *chain[4:]]
    report = refused(w, records, TamperedStatementError, "does not verify")
    assert [e.ok for e in report.timeline][:4] == [True, True, True, False]
    # Nothing is taken from a statement that does not verify: receipt follows no shipping.
    assert "received cannot follow tested" in report.timeline[4].failures[0]


def test_another_certificate_in_the_bundle(w: World, chain: list[LoggedStatement]) -> None:
    # The statement re-wrapped with the QA station's chain (and keyid): its key did not sign.
    record = chain[2]
    signature = record.statement.envelope.signatures[0]
    envelope = Envelope(
        PAYLOAD_TYPE,
        record.statement.payload,
        (EnvelopeSignature(keyid_of(w.qa.certificate), signature.sig),),
    )
    swapped = replace(record, statement=SignedStatement(envelope, w.qa.chain))
    refused(w, [*chain[:2], swapped, *chain[3:]], TamperedStatementError, "does not verify")


def test_a_key_agreement_certificate_does_not_sign(w: World) -> None:
    hayabusa = OrganizationSubject(name=HAYABUSA, country="JP", identifier=HAYABUSA_ID)
    agreement = Actor(
        issue_identity(w.pki.people, hayabusa, purpose=Purpose.KEY_AGREEMENT), w.pki.people
    )
    records = (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.station, E.TESTED)
        .add(agreement, E.SHIPPED)
        .records
    )
    refused(w, records, TamperedStatementError, "does not allow digital signatures")


def test_a_signed_payload_that_is_not_a_statement(w: World, chain: list[LoggedStatement]) -> None:
    from trustbridge.provenance.dsse import sign_envelope

    envelope = sign_envelope(
        PAYLOAD_TYPE,
        b'{"_type":"nonsense"}',
        w.cell.identity.signer,
        keyid=keyid_of(w.cell.certificate),
    )
    record = replace(chain[0], statement=SignedStatement(envelope, w.cell.chain))
    refused(w, [record, *chain[1:]], InvalidStatementError, "lacks")


def test_a_statement_about_another_component(w: World) -> None:
    other = Component("HPS200-000002", "HPS-200", HAYABUSA, manufacturer_identifier=HAYABUSA_ID)
    first = ChainBuilder(w).add(w.cell, E.MANUFACTURED).records[0]
    # build_statement refuses to link statements of two components; a forger would not.
    with pytest.raises(MalformedStatementError, match="is about HPS200-000001"):
        build_statement(
            other,
            E.TESTED,
            details=details_for(w, E.TESTED),
            previous=first.statement,
            claimed_time=at(2),
        )
    data = json.loads(
        build_statement(
            other, E.TESTED, details=details_for(w, E.TESTED), previous=None, claimed_time=at(2)
        )
    )
    data["predicate"]["previous"] = first.digest
    forged = sign_statement(canonical_json(data), w.station.identity.signer, w.station.chain)
    records = [first, LoggedStatement(forged, at(2))]
    refused(w, records, SubjectMismatchError, "is about HPS200-000002 .*, not HPS200-000001")


def test_the_chain_of_another_component(w: World, chain: list[LoggedStatement]) -> None:
    refused_report = verify(w, chain, component="HPS200-000002")
    with pytest.raises(SubjectMismatchError, match="not HPS200-000002"):
        refused_report.require()


def test_an_untrusted_signer(w: World) -> None:
    records = ChainBuilder(w).add(w.cell, E.MANUFACTURED).add(w.stranger, E.TESTED).records
    report = refused(w, records, UntrustedSignerError, "its signer is not trusted at")
    with pytest.raises(UntrustedSignerError) as caught:
        report.require()
    assert not isinstance(caught.value, RevokedSignerError)


def test_a_statement_after_the_signers_revocation_fails(w: World) -> None:
    before, after = at(3), at(12)
    assert before < REVOKED_AT < after
    records = (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.qa, E.TESTED, day=3)
        .add(w.qa, E.TESTED, day=12)
        .records
    )
    report = refused(
        w, records, RevokedSignerError, "its signer was revoked before the statement's log time"
    )
    # The statement the QA station signed before its revocation still holds.
    assert [e.ok for e in report.timeline] == [True, True, False]
    assert "revoked" in report.timeline[2].failures[0]
    assert len(report.failures) == 1


# -- one statement ------------------------------------------------------------------------------


def test_verify_statement_alone(w: World, chain: list[LoggedStatement]) -> None:
    for record in chain:
        entry = verify_statement(record, resolve=w.resolve)
        assert entry.ok and entry.digest == record.digest


def test_verify_statement_refuses_a_revoked_signer_now(w: World) -> None:
    record = ChainBuilder(w).add(w.qa, E.TESTED, day=12).records[-1]
    with pytest.raises(RevokedSignerError, match="revoked"):
        verify_statement(record, resolve=w.resolve)
    early = replace(record, time=at(3))
    assert verify_statement(early, resolve=w.resolve).ok


def test_verify_statement_alone_checks_the_signer_kind(w: World) -> None:
    records = ChainBuilder(w).add(w.station, E.MANUFACTURED).records
    with pytest.raises(SignerNotAllowedError, match="not a software identity"):
        verify_statement(records[0], resolve=w.resolve)
    record = records[0]
    sig = EnvelopeSignature(record.statement.envelope.signatures[0].keyid, b"\x30\x00")
    broken = _with_envelope(record, Envelope(PAYLOAD_TYPE, record.statement.payload, (sig,)))
    with pytest.raises(TamperedStatementError):
        verify_statement(broken, resolve=w.resolve)


def test_verify_statement_with_history(w: World, chain: list[LoggedStatement]) -> None:
    entry = verify_statement(chain[-1], resolve=w.resolve, history=chain[:-1])
    assert entry.event is E.FIRMWARE_UPDATED and entry.ok
    first = verify_statement(chain[0], resolve=w.resolve, history=[])
    assert first.event is E.MANUFACTURED
    # The shipping statement does not fit right after manufacture.
    with pytest.raises(LifecycleError, match="a gap"):
        verify_statement(chain[3], resolve=w.resolve, history=chain[:1])


def test_logged_statement_checks_its_inputs(chain: list[LoggedStatement]) -> None:
    with pytest.raises(InputError, match="neither 'log' nor 'tsa'"):
        replace(chain[0], time_source="claimed")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="non-negative"):
        replace(chain[0], index=-1)
    naive = replace(chain[0], time=chain[0].time.replace(tzinfo=None))
    assert naive.time == chain[0].time
