"""The declared lifecycle of a component: which event may follow which, and who may sign each.

The state is the last event (``None`` before the first). :data:`TRANSITIONS` lists the events
allowed after each state, :data:`CONDITIONS` the few that also depend on history, and
:data:`SIGNERS` who may sign each event. Anything else is a :class:`LifecycleError` or a
:class:`SignerNotAllowedError`.

The *holder* of a component is its manufacturer until it is received; from then on, the
recipient the shipping statement named. Organizations are compared by organizationIdentifier
when both sides have one, else by organization name (exactly, spaces collapsed).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from trustbridge import oids
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.provenance.statement import (
    Component,
    LifecycleEvent,
    ProvenanceError,
    Statement,
)

__all__ = [
    "CONDITIONS",
    "SIGNERS",
    "TRANSITIONS",
    "LifecycleError",
    "LifecycleState",
    "Organization",
    "ProductRule",
    "SignerNotAllowedError",
    "SignerRule",
    "Steward",
    "check_signer",
    "check_transition",
    "organization_of",
]

_E = LifecycleEvent
_K = SubjectKind


class LifecycleError(ProvenanceError):
    """An event the lifecycle forbids at this point: a wrong order or a gap."""


class SignerNotAllowedError(ProvenanceError):
    """A statement signed by an identity that may not sign this event for this component."""


#: The events allowed after each state (the last event; None before the first).
TRANSITIONS: Mapping[LifecycleEvent | None, frozenset[LifecycleEvent]] = MappingProxyType(
    {
        None: frozenset({_E.MANUFACTURED}),
        _E.MANUFACTURED: frozenset({_E.FIRMWARE_INSTALLED, _E.TESTED}),
        _E.FIRMWARE_INSTALLED: frozenset({_E.FIRMWARE_INSTALLED, _E.TESTED}),
        _E.TESTED: frozenset({_E.TESTED, _E.SHIPPED, _E.INTEGRATED}),
        _E.SHIPPED: frozenset({_E.RECEIVED}),
        _E.RECEIVED: frozenset({_E.INTEGRATED, _E.TESTED, _E.FIRMWARE_UPDATED}),
        _E.INTEGRATED: frozenset({_E.FIRMWARE_UPDATED}),
        _E.FIRMWARE_UPDATED: frozenset({_E.FIRMWARE_UPDATED, _E.INTEGRATED}),
    }
)

#: Conditions on history beyond the last event.
CONDITIONS: Mapping[LifecycleEvent, str] = MappingProxyType(
    {
        _E.SHIPPED: "the last test before it passed",
        _E.RECEIVED: "its sender is the holder that shipped it",
        _E.INTEGRATED: "the component was not integrated before (at most once)",
    }
)


class Steward(enum.StrEnum):
    """Whose identity signs an event."""

    #: The component's manufacturer organization.
    MANUFACTURER = "manufacturer"
    #: The current holder (the manufacturer until received, then the recipient).
    HOLDER = "holder"
    #: The recipient the last shipping statement named.
    RECIPIENT = "recipient"


class ProductRule(enum.StrEnum):
    """How the product a component is built into takes part in signing."""

    #: The product plays no part.
    NONE = "none"
    #: The signer must be the product the statement names (its serial number and URI).
    NAMED = "named"
    #: The product the component was integrated into may sign too.
    INTEGRATED_INTO = "integrated-into"


@dataclass(frozen=True)
class SignerRule:
    """Who may sign one event."""

    #: Identity kinds allowed (of the steward's organization).
    kinds: frozenset[SubjectKind]
    steward: Steward
    #: Whether the component's own identity (its certificate) may sign as well.
    component_itself: bool
    product: ProductRule
    text: str


#: Who may sign each event. The component's own identity signs only where
#: ``component_itself`` says so.
SIGNERS: Mapping[LifecycleEvent, SignerRule] = MappingProxyType(
    {
        _E.MANUFACTURED: SignerRule(
            frozenset({_K.MACHINE}),
            Steward.MANUFACTURER,
            component_itself=False,
            product=ProductRule.NONE,
            text="a machine identity of the component's manufacturer (the production machine)",
        ),
        _E.FIRMWARE_INSTALLED: SignerRule(
            frozenset({_K.MACHINE, _K.SOFTWARE}),
            Steward.HOLDER,
            component_itself=True,
            product=ProductRule.NONE,
            text="a machine or software identity of the holder, or the component itself",
        ),
        _E.TESTED: SignerRule(
            frozenset({_K.MACHINE, _K.SOFTWARE}),
            Steward.HOLDER,
            component_itself=False,
            product=ProductRule.NONE,
            text="a machine or software identity of the holder (a test station)",
        ),
        _E.SHIPPED: SignerRule(
            frozenset({_K.ORGANIZATION, _K.PERSON, _K.SOFTWARE}),
            Steward.HOLDER,
            component_itself=False,
            product=ProductRule.NONE,
            text="an organization, person or software identity of the holder",
        ),
        _E.RECEIVED: SignerRule(
            frozenset({_K.ORGANIZATION, _K.PERSON, _K.SOFTWARE, _K.MACHINE}),
            Steward.RECIPIENT,
            component_itself=False,
            product=ProductRule.NONE,
            text="an identity of the recipient the shipping statement named",
        ),
        _E.INTEGRATED: SignerRule(
            frozenset({_K.MACHINE}),
            Steward.HOLDER,
            component_itself=False,
            product=ProductRule.NAMED,
            text="the machine identity of the product it is built into, held by the holder",
        ),
        _E.FIRMWARE_UPDATED: SignerRule(
            frozenset({_K.SOFTWARE}),
            Steward.HOLDER,
            component_itself=True,
            product=ProductRule.INTEGRATED_INTO,
            text="the component itself, the product it is built into, or a software identity "
            "of the holder",
        ),
    }
)


# -- organizations ------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return " ".join(name.split())


@dataclass(frozen=True)
class Organization:
    """An organization as a certificate or a statement names it."""

    name: str
    #: organizationIdentifier (ETSI EN 319 412-1), where known.
    identifier: str | None = None

    def matches(self, other: Organization) -> bool:
        """Same organization: by identifier when both have one, else by name."""
        if self.identifier and other.identifier:
            return self.identifier == other.identifier
        return _normalized(self.name) == _normalized(other.name)

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})" if self.identifier else self.name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "identifier": self.identifier}


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else None
    return value if isinstance(value, str) and value.strip() else None


def organization_of(certificate: x509.Certificate) -> Organization | None:
    """The organization a certificate's subject names (O, organizationIdentifier), if any.

    For a machine certificate O is its manufacturer or operator.
    """
    name = _attribute(certificate, NameOID.ORGANIZATION_NAME)
    if name is None:
        return None
    return Organization(name, _attribute(certificate, oids.ID_AT_ORGANIZATION_IDENTIFIER))


def _uri_sans(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(names.get_values_for_type(x509.UniformResourceIdentifier))


def _is_product(certificate: x509.Certificate, product: Mapping[str, Any]) -> bool:
    """Whether ``certificate`` is the machine identity of ``product`` (serial number and URI)."""
    return _attribute(certificate, NameOID.SERIAL_NUMBER) == product["serial_number"] and product[
        "uri"
    ] in _uri_sans(certificate)


def _manufacturer(component: Component) -> Organization:
    return Organization(component.manufacturer, component.manufacturer_identifier)


def _party(value: Mapping[str, Any]) -> Organization:
    return Organization(value["name"], value.get("identifier"))


# -- the state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifecycleState:
    """Where a component's lifecycle stands after the statements seen so far."""

    component: Component
    holder: Organization
    #: The last event; None before the first.
    last: LifecycleEvent | None = None
    #: Digest of the last statement (what the next one's ``previous`` must name).
    digest: str | None = None
    #: The recipient named by the last shipping statement, until it is received.
    recipient: Organization | None = None
    #: Result of the last test (``pass``/``fail``), None before any.
    last_test: str | None = None
    #: The product the component was integrated into.
    product: Mapping[str, Any] | None = None

    @classmethod
    def start(cls, component: Component) -> LifecycleState:
        """The state before the first statement: held by the manufacturer."""
        return cls(component, _manufacturer(component))

    def after(self, statement: Statement, digest: str) -> LifecycleState:
        """The state once ``statement`` (whose payload digest is ``digest``) happened."""
        event = statement.event
        changes: dict[str, Any] = {"last": event, "digest": digest}
        if event is _E.TESTED:
            changes["last_test"] = statement.details["result"]
        elif event is _E.SHIPPED:
            changes["recipient"] = _party(statement.details["recipient"])
        elif event is _E.RECEIVED:
            changes["holder"] = self.recipient or self.holder
            changes["recipient"] = None
        elif event is _E.INTEGRATED:
            changes["product"] = dict(statement.details["product"])
        return replace(self, **changes)


def check_transition(state: LifecycleState, statement: Statement) -> None:
    """Raise :class:`LifecycleError` unless ``statement``'s event may follow ``state``."""
    event = statement.event
    name = state.component.id
    allowed = TRANSITIONS.get(state.last, frozenset())
    if event not in allowed:
        before = state.last.value if state.last is not None else "the start"
        expected = ", ".join(sorted(allowed)) or "nothing"
        raise LifecycleError(
            f"{name}: {event} cannot follow {before}",
            hint=f"after {before} the lifecycle allows: {expected}",
        )
    if event is _E.SHIPPED and state.last_test != "pass":
        raise LifecycleError(
            f"{name}: shipped cannot follow a failed test (the last test result is "
            f"{state.last_test or 'missing'})",
            hint="record a passing test before shipping",
        )
    if event is _E.INTEGRATED and state.product is not None:
        raise LifecycleError(
            f"{name}: integrated cannot follow an earlier integration into "
            f"{state.product['serial_number']}"
        )
    if event is _E.RECEIVED:
        sender = _party(statement.details["sender"])
        if not sender.matches(state.holder):
            raise LifecycleError(
                f"{name}: received from {sender}, but it was shipped by {state.holder}"
            )


def _describe(certificate: x509.Certificate, kind: SubjectKind | None) -> str:
    return f"{kind or 'unknown kind of'} identity {certificate.subject.rfc4514_string()}"


def check_signer(
    state: LifecycleState, statement: Statement, signer: x509.Certificate
) -> Organization | None:
    """Raise :class:`SignerNotAllowedError` unless ``signer`` may sign ``statement`` in
    ``state``; return the acting organization (the signer's O and organizationIdentifier,
    None where its certificate names no organization)."""
    event = statement.event
    rule = SIGNERS[event]
    name = state.component.id
    kind = subject_kind_of(signer)
    own = state.component.certificate
    is_component = own is not None and own.public_bytes(Encoding.DER) == signer.public_bytes(
        Encoding.DER
    )
    who = _describe(signer, kind)
    organization = organization_of(signer)

    def refuse(reason: str) -> SignerNotAllowedError:
        return SignerNotAllowedError(
            f"{name}: {event} must be signed by {rule.text}; {who} {reason}",
        )

    if is_component:
        if rule.component_itself:
            return organization
        raise refuse("is the component itself")
    if (
        rule.product is ProductRule.INTEGRATED_INTO
        and state.product is not None
        and kind is _K.MACHINE
        and _is_product(signer, state.product)
    ):
        return organization
    if kind is None:
        raise refuse("declares no subject kind")
    if kind not in rule.kinds:
        raise refuse(f"is of kind {kind}")
    if organization is None:
        raise refuse("names no organization")
    if rule.steward is Steward.MANUFACTURER:
        steward = _manufacturer(state.component)
    elif rule.steward is Steward.RECIPIENT:
        if state.recipient is None:
            raise refuse("signs, but no shipping statement names a recipient")
        steward = state.recipient
    else:
        steward = state.holder
    if not organization.matches(steward):
        raise refuse(f"belongs to {organization}, not to the {rule.steward} {steward}")
    if rule.product is ProductRule.NAMED:
        product = statement.details["product"]
        if not _is_product(signer, product):
            raise refuse(
                f"is not the product {product['serial_number']} ({product['uri']}) the "
                "statement names"
            )
        if not Organization(product["manufacturer"]).matches(Organization(organization.name)):
            raise refuse(
                f"names {organization.name}, not the product's manufacturer "
                f"{product['manufacturer']}"
            )
    return organization
