"""The declared lifecycle: transitions, their conditions, and who may sign each event."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from cryptography import x509

from tests.provenance import (
    HAYABUSA,
    HAYABUSA_ID,
    MUSTER,
    MUSTER_ID,
    Actor,
    E,
    World,
    at,
    details_for,
    party,
)
from trustbridge.pki.profiles import SubjectKind
from trustbridge.provenance import (
    SIGNERS,
    TRANSITIONS,
    LifecycleError,
    LifecycleEvent,
    SignerNotAllowedError,
    Statement,
    build_statement,
    parse_statement,
)
from trustbridge.provenance.lifecycle import (
    CONDITIONS,
    LifecycleState,
    Organization,
    check_signer,
    check_transition,
    organization_of,
)

STATES: list[LifecycleEvent | None] = [None, *LifecycleEvent]
ALLOWED = [(s, e) for s in STATES for e in LifecycleEvent if e in TRANSITIONS[s]]
FORBIDDEN = [(s, e) for s in STATES for e in LifecycleEvent if e not in TRANSITIONS[s]]


def statement(
    w: World, event: LifecycleEvent, details: dict[str, object] | None = None
) -> Statement:
    payload = build_statement(
        w.component,
        event,
        details=details_for(w, event) if details is None else details,
        previous=None,
        claimed_time=at(1),
    )
    return parse_statement(payload, source="test")


def state(w: World, last: LifecycleEvent | None, **changes: object) -> LifecycleState:
    """A state after ``last``, with a passed test and nothing integrated, held by Hayabusa."""
    values: dict[str, object] = {"last": last, "last_test": "pass", **changes}
    return replace(LifecycleState.start(w.component), **values)  # type: ignore[arg-type]


# -- the table as data --------------------------------------------------------------------------


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert set(SIGNERS) == set(LifecycleEvent)
    # The only way in is manufactured; nothing leads back to it.
    assert TRANSITIONS[None] == {LifecycleEvent.MANUFACTURED}
    assert all(LifecycleEvent.MANUFACTURED not in TRANSITIONS[s] for s in LifecycleEvent)
    # Every event can be reached.
    assert set().union(*TRANSITIONS.values()) == set(LifecycleEvent)
    assert set(CONDITIONS) == {E.SHIPPED, E.RECEIVED, E.INTEGRATED}


def test_the_table_as_decided() -> None:
    table = {(s.value if s else None): sorted(e.value for e in TRANSITIONS[s]) for s in STATES}
    assert table == {
        None: ["manufactured"],
        "manufactured": ["firmware-installed", "tested"],
        "firmware-installed": ["firmware-installed", "tested"],
        "tested": ["integrated", "shipped", "tested"],
        "shipped": ["received"],
        "received": ["firmware-updated", "integrated", "tested"],
        "integrated": ["firmware-updated"],
        "firmware-updated": ["firmware-updated", "integrated"],
    }


@pytest.mark.parametrize(("last", "event"), ALLOWED)
def test_allowed_transitions(w: World, last: LifecycleEvent | None, event: LifecycleEvent) -> None:
    check_transition(state(w, last), statement(w, event))


@pytest.mark.parametrize(("last", "event"), FORBIDDEN)
def test_forbidden_transitions(
    w: World, last: LifecycleEvent | None, event: LifecycleEvent
) -> None:
    before = last.value if last else "the start"
    with pytest.raises(LifecycleError, match=f"HPS200-000001: {event} cannot follow {before}$"):
        check_transition(state(w, last), statement(w, event))


def test_shipping_needs_the_last_test_passed(w: World) -> None:
    failed = state(w, E.TESTED, last_test="fail")
    with pytest.raises(LifecycleError, match="shipped cannot follow a failed test"):
        check_transition(failed, statement(w, E.SHIPPED))
    # A failed test, then a passing retest: shipping is fine.
    retested = failed.after(statement(w, E.TESTED), "00" * 32)
    check_transition(retested, statement(w, E.SHIPPED))


def test_integrated_at_most_once(w: World) -> None:
    integrated = state(w, E.INTEGRATED).after(statement(w, E.INTEGRATED), "00" * 32)
    updated = integrated.after(statement(w, E.FIRMWARE_UPDATED), "11" * 32)
    with pytest.raises(LifecycleError, match="earlier integration into MX500-000042"):
        check_transition(updated, statement(w, E.INTEGRATED))
    # Before any integration, firmware-updated -> integrated is allowed.
    check_transition(state(w, E.FIRMWARE_UPDATED), statement(w, E.INTEGRATED))


def test_received_from_someone_else_than_the_shipper(w: World) -> None:
    shipped = state(w, E.TESTED).after(statement(w, E.SHIPPED), "00" * 32)
    check_transition(shipped, statement(w, E.RECEIVED))
    odd = statement(w, E.RECEIVED, {"sender": party("Somebody", "VATDE-111")})
    with pytest.raises(LifecycleError, match="received from Somebody"):
        check_transition(shipped, odd)


def test_holder_changes_on_receipt(w: World) -> None:
    start = LifecycleState.start(w.component)
    assert start.holder == Organization(HAYABUSA, HAYABUSA_ID)
    shipped = state(w, E.TESTED).after(statement(w, E.SHIPPED), "00" * 32)
    assert shipped.holder == Organization(HAYABUSA, HAYABUSA_ID)
    assert shipped.recipient == Organization(MUSTER, MUSTER_ID)
    received = shipped.after(statement(w, E.RECEIVED), "11" * 32)
    assert received.holder == Organization(MUSTER, MUSTER_ID)
    assert received.recipient is None
    assert received.digest == "11" * 32 and received.last is E.RECEIVED


# -- organizations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (Organization("A GmbH", "VATDE-1"), Organization("A GmbH", "VATDE-1"), True),
        # Identifiers decide where both sides have one, whatever the names.
        (Organization("A GmbH", "VATDE-1"), Organization("A  G.m.b.H.", "VATDE-1"), True),
        (Organization("A GmbH", "VATDE-1"), Organization("A GmbH", "VATDE-2"), False),
        # Otherwise the names, spaces collapsed, case kept.
        (Organization("A GmbH"), Organization("A  GmbH", "VATDE-1"), True),
        (Organization("A GmbH"), Organization("a gmbh"), False),
    ],
)
def test_organization_matching(a: Organization, b: Organization, same: bool) -> None:
    assert a.matches(b) is same
    assert b.matches(a) is same


def test_organization_of_certificates(w: World) -> None:
    assert organization_of(w.hayabusa.certificate) == Organization(HAYABUSA, HAYABUSA_ID)
    # A machine certificate names its manufacturer or operator, without an identifier.
    assert organization_of(w.cell.certificate) == Organization(HAYABUSA)
    assert organization_of(w.clerk.certificate) == Organization(MUSTER, MUSTER_ID)


# -- who signs ----------------------------------------------------------------------------------


def _after(w: World, *events: LifecycleEvent) -> LifecycleState:
    current = LifecycleState.start(w.component)
    for index, event in enumerate(events):
        current = current.after(statement(w, event), f"{index:064x}")
    return current


HAPPY_PREFIX: dict[LifecycleEvent, tuple[LifecycleEvent, ...]] = {
    E.MANUFACTURED: (),
    E.FIRMWARE_INSTALLED: (E.MANUFACTURED,),
    E.TESTED: (E.MANUFACTURED,),
    E.SHIPPED: (E.MANUFACTURED, E.TESTED),
    E.RECEIVED: (E.MANUFACTURED, E.TESTED, E.SHIPPED),
    E.INTEGRATED: (E.MANUFACTURED, E.TESTED, E.SHIPPED, E.RECEIVED),
    E.FIRMWARE_UPDATED: (E.MANUFACTURED, E.TESTED, E.SHIPPED, E.RECEIVED, E.INTEGRATED),
}

#: Who may sign each event in the test world (by World attribute), and who may not.
MAY_SIGN = {
    E.MANUFACTURED: {"cell"},
    E.FIRMWARE_INSTALLED: {"sensor", "cell", "station", "qa"},
    E.TESTED: {"cell", "station", "qa"},
    E.SHIPPED: {"hayabusa", "station", "qa"},
    E.RECEIVED: {"muster", "clerk", "line", "press"},
    E.INTEGRATED: {"press"},
    E.FIRMWARE_UPDATED: {"sensor", "press", "line"},
}
ACTORS = (
    "hayabusa",
    "cell",
    "sensor",
    "station",
    "qa",
    "muster",
    "clerk",
    "line",
    "press",
    "rogue",
)


@pytest.mark.parametrize(("event", "name"), list(itertools.product(LifecycleEvent, ACTORS)))
def test_who_may_sign(w: World, event: LifecycleEvent, name: str) -> None:
    actor: Actor = getattr(w, name)
    current = _after(w, *HAPPY_PREFIX[event])
    if name in MAY_SIGN[event]:
        check_signer(current, statement(w, event), actor.certificate)
    else:
        with pytest.raises(SignerNotAllowedError, match=f"HPS200-000001: {event} must be signed"):
            check_signer(current, statement(w, event), actor.certificate)


def test_acting_organization_is_returned(w: World) -> None:
    shipped = check_signer(
        _after(w, E.MANUFACTURED, E.TESTED), statement(w, E.SHIPPED), w.hayabusa.certificate
    )
    assert shipped == Organization(HAYABUSA, HAYABUSA_ID)


def test_refusals_say_why(w: World) -> None:
    tested = _after(w, E.MANUFACTURED)
    with pytest.raises(SignerNotAllowedError, match="is of kind organization"):
        check_signer(tested, statement(w, E.TESTED), w.hayabusa.certificate)
    with pytest.raises(SignerNotAllowedError, match=f"belongs to {MUSTER}.*not to the holder"):
        check_signer(tested, statement(w, E.TESTED), w.line.certificate)
    with pytest.raises(SignerNotAllowedError, match="is the component itself"):
        check_signer(tested, statement(w, E.TESTED), w.sensor.certificate)
    # Same name, another organizationIdentifier: not the manufacturer.
    shipping = _after(w, E.MANUFACTURED, E.TESTED)
    with pytest.raises(SignerNotAllowedError, match="NTRJP-9999999999999"):
        check_signer(shipping, statement(w, E.SHIPPED), w.rogue.certificate)


def test_integration_must_be_signed_by_the_named_product(w: World) -> None:
    received = _after(w, *HAPPY_PREFIX[E.INTEGRATED])
    other_product = dict(details_for(w, E.INTEGRATED)["product"], serial_number="MX500-000043")
    with pytest.raises(SignerNotAllowedError, match="is not the product MX500-000043"):
        check_signer(
            received, statement(w, E.INTEGRATED, {"product": other_product}), w.press.certificate
        )


def test_foreign_certificates_declare_no_kind(w: World) -> None:
    # The CA certificate has no subject-kind extension.
    ca: x509.Certificate = w.pki.devices.certificate
    with pytest.raises(SignerNotAllowedError, match="declares no subject kind"):
        check_signer(_after(w, E.MANUFACTURED), statement(w, E.TESTED), ca)


def test_signer_rules_as_decided() -> None:
    kinds = {e.value: sorted(k.value for k in SIGNERS[e].kinds) for e in LifecycleEvent}
    assert kinds == {
        "manufactured": ["machine"],
        "firmware-installed": ["machine", "software"],
        "tested": ["machine", "software"],
        "shipped": ["organization", "person", "software"],
        "received": ["machine", "organization", "person", "software"],
        "integrated": ["machine"],
        "firmware-updated": ["software"],
    }
    itself = {e for e in LifecycleEvent if SIGNERS[e].component_itself}
    assert itself == {E.FIRMWARE_INSTALLED, E.FIRMWARE_UPDATED}
    assert SIGNERS[E.RECEIVED].steward == "recipient"
    assert SIGNERS[E.MANUFACTURED].steward == "manufacturer"
    assert SubjectKind.MACHINE in SIGNERS[E.INTEGRATED].kinds
