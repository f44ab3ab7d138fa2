"""Who may read which sensor's test results at a station: the access policies, per read.

A station that decides reads (:class:`StationAccess`) answers each Read of a sensor's nodes with
the node home's access policies (``docs/assessment.md``, Cedar): the principal is the session's
user, the person of an X.509 user identity token or, for an anonymous token, the client
application (a System for a software identity, a Component for a machine), as the trust
resolver resolved it; the action is ``read``; the resource is the sensor's test results, a
``Data`` item of category ``test-report`` owned by the station's organization and, where the
station serves under a contract, shared under it at the time of the read; the purpose is the
station's. A read the policies do not allow is answered ``BadUserAccessDenied`` for each node of
that sensor, and the others are read as asked.

An organization's membership is only believed from the scheme that vouches for it: a
principal that claims the station's own organization must have been resolved by the own-scheme
route (a partner's CA cannot make someone a member of ours), and one that claims a partner
organization whose scheme is known (``member_schemes``) must hold an identity from that scheme.

A decision is made once per session and sensor (a session's user and its resolution do not
change, and the station ends a session's reads when its checks grow old), kept in
:attr:`StationAccess.decisions` and logged (allowed at INFO, denied at WARNING, on the
``trustbridge.opcua`` logger). Anything that breaks while deciding denies (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustbridge.assessment.access import (
    AccessPolicies,
    AccessRequest,
    Action,
    Entity,
    EntityRef,
    EntityStore,
    EntityType,
    entity_from_data,
    entity_from_identity,
)
from trustbridge.clock import Clock
from trustbridge.errors import InputError, TrustbridgeError
from trustbridge.opcua._asyncua import SessionUser
from trustbridge.opcua.peers import KEEP_RECENT, LOGGER, Tally, printable
from trustbridge.trust.resolver import Resolution, Route

__all__ = ["DATA_CATEGORY", "ReadDecision", "StationAccess"]

#: The category of the Data item a sensor's test results are.
DATA_CATEGORY = "test-report"


@dataclass(frozen=True)
class ReadDecision:
    """The access policies' answer for one session's user and one sensor."""

    #: The subject of the certificate the principal rests on (control characters escaped).
    user: str
    fingerprint: str
    #: A person (X.509 user token), or the client application alone (anonymous token).
    person: bool
    #: The principal as the policies saw it (``Trustbridge::Person::"..."``), where one was made.
    principal: str | None
    serial: str
    allowed: bool
    policies: tuple[str, ...]
    reasons: tuple[str, ...]
    purpose: str
    at: datetime
    #: For a person: the client application it acts through, as the policies saw it
    #: (``Trustbridge::System::"..."``), where one was made.
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "fingerprint": self.fingerprint,
            "person": self.person,
            "principal": self.principal,
            "via": self.via,
            "serial": self.serial,
            "decision": "allow" if self.allowed else "deny",
            "policies": list(self.policies),
            "reasons": list(self.reasons),
            "purpose": self.purpose,
            "at": f"{self.at:%Y-%m-%dT%H:%M:%SZ}",
        }


def _first(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = certificate.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else ""


class StationAccess:
    """Decides, with ``policies``, who may read which sensor's results at a station.

    ``owner`` is the station's organization (an Organization entity); ``contract`` the Contract
    entity the results are shared under (None: not shared under one, so only the owner's people
    and systems may read them under the reference policies); ``organizations`` further
    Organization entities the policies may look at (a partner with our assessment of it). An
    organization of a principal that is none of these is ``unassessed`` with no level.
    ``member_schemes`` maps an organization identifier to the scheme its people's identities
    must be from (a partner's: the scheme of the identity it concluded the contract with).
    """

    def __init__(
        self,
        policies: AccessPolicies,
        *,
        owner: Entity,
        clock: Clock,
        contract: Entity | None = None,
        organizations: Sequence[Entity] = (),
        purpose: str = "quality-assurance",
        member_schemes: Mapping[str, str] | None = None,
        on_decision: Callable[[ReadDecision], None] | None = None,
        keep: int = KEEP_RECENT,
    ) -> None:
        if owner.ref.type is not EntityType.ORGANIZATION:
            raise InputError(f"the station's owner must be an organization, not {owner.ref}")
        if contract is not None and contract.ref.type is not EntityType.CONTRACT:
            raise InputError(f"{contract.ref} is not a contract")
        for entity in organizations:
            if entity.ref.type is not EntityType.ORGANIZATION:
                raise InputError(f"{entity.ref} is not an organization")
        if not purpose.strip():
            raise InputError("the station's read purpose must not be empty")
        self.policies = policies
        self.owner = owner
        self.contract = contract
        self.purpose = purpose
        self.clock = clock
        self.on_decision = on_decision
        self._organizations = {e.ref.id: e for e in (*organizations, owner)}
        self.member_schemes = dict(member_schemes or {})
        # The most recent ``keep`` decisions; every one is counted, logged and handed to
        # ``on_decision``.
        self._tally: Tally[ReadDecision] = Tally(keep)

    @property
    def decisions(self) -> list[ReadDecision]:
        """The most recent ``keep`` decisions, oldest first."""
        return self._tally.recent

    @property
    def allowed_total(self) -> int:
        return self._tally.yes

    @property
    def denied_total(self) -> int:
        return self._tally.no

    @property
    def refusals(self) -> list[ReadDecision]:
        return [d for d in self.decisions if not d.allowed]

    def decide(self, user: SessionUser, serial: str) -> ReadDecision:
        """May ``user`` read sensor ``serial``'s results? Decided once per session."""
        memo = user.memo
        if memo is None:
            memo = user.memo = {}
        key = ("read", serial)
        known = memo.get(key)
        if isinstance(known, ReadDecision):
            return known
        decision = self._decide(user, serial, memo)
        # Recorded (and handed to on_decision, an audit hook) before it is kept: a hook that
        # fails fails this read, and the next read decides again.
        self._record(decision)
        memo[key] = decision
        return decision

    def _decide(self, user: SessionUser, serial: str, memo: dict[Any, Any]) -> ReadDecision:
        at = self.clock.now()
        verdict = user.verdict
        subject = verdict.subject if verdict is not None else printable(str(user.name))
        fingerprint = verdict.fingerprint if verdict is not None else ""
        principal: Entity | None = None
        via: Entity | None = None

        def denied(reason: str) -> ReadDecision:
            return ReadDecision(
                user=subject,
                fingerprint=fingerprint,
                person=user.person,
                principal=str(principal.ref) if principal is not None else None,
                via=str(via.ref) if via is not None else None,
                serial=serial,
                allowed=False,
                policies=(),
                reasons=(printable(reason),),
                purpose=self.purpose,
                at=at,
            )

        try:
            if verdict is None or user.certificate is None or verdict.resolution is None:
                return denied("not decided: the session's user was never resolved")
            principal = memo.get("principal")
            if not isinstance(principal, Entity):
                principal = entity_from_identity(user.certificate, verdict.resolution)
                memo["principal"] = principal
            problem = self._membership_problem(principal, verdict.resolution)
            if problem is not None:
                return denied(problem)
            if user.person:
                # The person acts through the session's client application: the policies see
                # it too (context.via), believed as far as the person's membership is.
                client, checked = user.via_certificate, user.via_verdict
                if client is None or checked is None or checked.resolution is None:
                    return denied(
                        "not decided: the client application the person acts through was "
                        "never resolved"
                    )
                via = memo.get("via")
                if not isinstance(via, Entity):
                    via = entity_from_identity(client, checked.resolution)
                    memo["via"] = via
                problem = self._membership_problem(via, checked.resolution)
                if problem is not None:
                    return denied(f"its client application: {problem}")
            data = entity_from_data(
                {
                    "type": "Data",
                    "id": f"opcua-test-results:{serial}",
                    "name": f"test results of sensor {serial}",
                    "organization": self.owner.ref.id,
                    "category": DATA_CATEGORY,
                    **(
                        {"contract": self.contract.ref.id, "shared_at": at.isoformat()}
                        if self.contract is not None
                        else {}
                    ),
                }
            )
            # The session's part of the store is built (and parsed) once; each sensor adds
            # only its data entity.
            session_store = memo.get("store")
            if not isinstance(session_store, EntityStore):
                session_store = memo["store"] = EntityStore(
                    [
                        *self._organizations.values(),
                        *self._organization_of(principal, user.certificate),
                        *([self.contract] if self.contract is not None else []),
                        principal,
                    ]
                )
            store = session_store.with_entities([data])
            answer = self.policies.decide(
                AccessRequest(
                    principal=principal.ref,
                    action=Action.READ,
                    resource=data.ref,
                    at=at,
                    purpose=self.purpose,
                    via=via,
                ),
                store,
            )
        except TrustbridgeError as exc:
            return denied(f"not decided: {exc.message}")
        except Exception as exc:  # fail closed: whatever broke, nothing is read
            return denied(f"not decided, the decision failed with {type(exc).__name__}")
        return ReadDecision(
            user=subject,
            fingerprint=fingerprint,
            person=user.person,
            principal=str(principal.ref),
            via=str(via.ref) if via is not None else None,
            serial=serial,
            allowed=answer.allowed,
            policies=answer.policies,
            reasons=tuple(printable(r) for r in answer.reasons),
            purpose=self.purpose,
            at=at,
        )

    def _membership_problem(self, principal: Entity, resolution: Resolution) -> str | None:
        """Why the principal's claimed organization is not believed, or None."""
        organization = principal.attrs.get("organization")
        if not isinstance(organization, EntityRef):
            return None
        if organization.id == self.owner.ref.id and resolution.route is not Route.OWN_SCHEME:
            return (
                f"it claims to belong to this station's organization {organization.id}, but "
                f"its identity is not from this node's own scheme (resolved by the "
                f"{resolution.route} route)"
            )
        scheme = self.member_schemes.get(organization.id)
        if scheme is not None and resolution.holder_level.scheme != scheme:
            return (
                f"it claims to belong to {organization.id}, whose identity is from scheme "
                f"{scheme}, but its own is from scheme {resolution.holder_level.scheme}"
            )
        return None

    def _organization_of(self, principal: Entity, certificate: x509.Certificate) -> list[Entity]:
        """The principal's organization where none of the known ones is it: unassessed, named
        and placed as the principal's certificate names and places it."""
        organization = principal.attrs.get("organization")
        if not isinstance(organization, EntityRef) or organization.id in self._organizations:
            return []
        return [
            entity_from_data(
                {
                    "type": "Organization",
                    "id": organization.id,
                    "name": _first(certificate, NameOID.ORGANIZATION_NAME) or organization.id,
                    "country": _first(certificate, NameOID.COUNTRY_NAME),
                }
            )
        ]

    def _record(self, decision: ReadDecision) -> None:
        self._tally.add(decision, yes=decision.allowed)
        LOGGER.log(
            logging.INFO if decision.allowed else logging.WARNING,
            "%s OPC UA read of sensor %s by %s %s [sha256 %s]%s: %s",
            "allowed" if decision.allowed else "denied",
            printable(decision.serial),
            "person" if decision.person else "client application",
            decision.user,
            decision.fingerprint[:16],
            f" via {decision.via}" if decision.via else "",
            "; ".join(decision.reasons),
        )
        if self.on_decision is not None:
            self.on_decision(decision)
