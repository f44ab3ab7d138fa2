"""A small supply chain for the provenance tests, on the scenario PKI of tests/pki/pkifactory.py.

- Hayabusa Sensor Components K.K. (the manufacturer): its organization identity, a production
  machine (assembly cell 3), a test station and a QA station (software), and the sensor
  HPS200-000001 with its own machine certificate;
- Muster Maschinenbau GmbH (the customer): its organization identity, a person, its line
  controller (software) and the MX-500 press (the product the sensor is built into);
- a rogue organization that calls itself Hayabusa under another organizationIdentifier.

The relying party trusts the scheme's root and validates with revocation required; CRLs come
from an archive by time: empty ones from the start, and from :data:`REVOKED_AT` on a devices
CRL that lists the QA station. :func:`world` builds it once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from tests.pki.pkifactory import (
    AT,
    IssuedIdentity,
    ScenarioPki,
    build_scenario_pki,
    issue_identity,
    machine_subject,
    organization_subject,
    person_subject,
    software_subject,
)
from tests.trust.test_validation import build_crl
from trustbridge.pki.ca import CertificateAuthority
from trustbridge.pki.profiles import MachineSubject, OrganizationSubject, SoftwareSubject, Subject
from trustbridge.provenance import (
    Component,
    LifecycleEvent,
    LoggedStatement,
    SignedStatement,
    build_statement,
    sign_statement,
)
from trustbridge.trust.reference import GERMANY
from trustbridge.trust.resolver import Resolution, TrustConfig, TrustResolver

HAYABUSA = "Hayabusa Sensor Components K.K."
HAYABUSA_ID = "NTRJP-3180001012345"
MUSTER = "Muster Maschinenbau GmbH"
MUSTER_ID = "VATDE-123456789"
SERIAL = "HPS200-000001"
#: When the QA station's identity is revoked.
REVOKED_AT = AT + timedelta(days=10)
DIGEST = "ab" * 32

E = LifecycleEvent


def at(days: float) -> datetime:
    return AT + timedelta(days=days)


@dataclass(frozen=True)
class Actor:
    """An identity that signs statements: its key, certificate and chain (leaf first)."""

    identity: IssuedIdentity
    issuer: CertificateAuthority

    @property
    def certificate(self) -> x509.Certificate:
        return self.identity.certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.identity.certificate, self.issuer.certificate)


@dataclass
class World:
    pki: ScenarioPki
    hayabusa: Actor
    cell: Actor
    sensor: Actor
    station: Actor
    qa: Actor
    muster: Actor
    clerk: Actor
    line: Actor
    press: Actor
    rogue: Actor
    stranger: Actor
    crl_epochs: tuple[tuple[datetime, tuple[bytes, ...]], ...]
    resolver: TrustResolver

    @property
    def component(self) -> Component:
        return Component(
            serial_number=SERIAL,
            model="HPS-200",
            manufacturer=HAYABUSA,
            manufacturer_identifier=HAYABUSA_ID,
            global_asset_id="https://hayabusa.example/aas/HPS200-000001",
            certificate=self.sensor.certificate,
        )

    def crls_at(self, when: datetime) -> tuple[bytes, ...]:
        """The CRLs current at ``when`` (the archive a node keeps)."""
        current = self.crl_epochs[0][1]
        for since, crls in self.crl_epochs:
            if since <= when:
                current = crls
        return current

    def resolve(self, leaf: x509.Certificate, extra: Any, when: datetime) -> Resolution:
        return self.resolver.resolve(leaf, at=when, extra=tuple(extra), crls=self.crls_at(when))


def _actor(ca: CertificateAuthority, subject: Subject) -> Actor:
    return Actor(issue_identity(ca, subject), ca)


def _hayabusa_software(name: str) -> SoftwareSubject:
    return SoftwareSubject(
        name=name,
        version="1.0",
        organization=HAYABUSA,
        organization_identifier=HAYABUSA_ID,
        country="JP",
    )


def _crls(
    pki: ScenarioPki, since: datetime, revoked: tuple[int, ...], number: int
) -> tuple[bytes, ...]:
    until = since + timedelta(days=60)
    return tuple(
        build_crl(
            ca,
            this_update=since,
            next_update=until,
            revoked=revoked if ca is pki.devices else (),
            number=number,
        )
        for ca in (pki.root, pki.people, pki.devices)
    )


@functools.cache
def world() -> World:
    pki = build_scenario_pki()
    devices, people = pki.devices, pki.people
    qa = _actor(devices, _hayabusa_software("QA Station"))
    # build_crl dates each revocation 5 minutes before the CRL's thisUpdate.
    epochs = (
        (AT, _crls(pki, AT, (), 1)),
        (
            REVOKED_AT + timedelta(minutes=5),
            _crls(pki, REVOKED_AT + timedelta(minutes=5), (qa.certificate.serial_number,), 2),
        ),
    )
    other = build_scenario_pki()
    return World(
        pki=pki,
        hayabusa=_actor(
            people, OrganizationSubject(name=HAYABUSA, country="JP", identifier=HAYABUSA_ID)
        ),
        cell=_actor(
            devices,
            MachineSubject(
                manufacturer=HAYABUSA, model="Assembly Cell", serial_number="CELL-3", country="JP"
            ),
        ),
        sensor=_actor(
            devices,
            MachineSubject(
                manufacturer=HAYABUSA, model="HPS-200", serial_number=SERIAL, country="JP"
            ),
        ),
        station=_actor(devices, _hayabusa_software("Test Station")),
        qa=qa,
        muster=_actor(people, organization_subject()),
        clerk=_actor(people, person_subject()),
        line=_actor(devices, software_subject()),
        press=_actor(devices, machine_subject()),
        rogue=_actor(
            people,
            OrganizationSubject(name=HAYABUSA, country="JP", identifier="NTRJP-9999999999999"),
        ),
        # The same subject under a root the relying party does not trust.
        stranger=_actor(other.devices, _hayabusa_software("Test Station")),
        crl_epochs=epochs,
        resolver=TrustResolver(
            TrustConfig(scheme=GERMANY, anchors=(pki.root.certificate,)),
            pool=(people.certificate, devices.certificate),
        ),
    )


# -- statements ---------------------------------------------------------------------------------


def party(name: str, identifier: str) -> dict[str, str]:
    return {"name": name, "identifier": identifier}


def product(w: World) -> dict[str, str]:
    subject = machine_subject()
    return {
        "serial_number": subject.serial_number,
        "model": subject.model,
        "manufacturer": subject.manufacturer,
        "uri": subject.uri,
    }


def firmware(version: str = "2.1.0") -> dict[str, Any]:
    return {
        "software": {"name": "HPS firmware", "version": version, "sha256": "12" * 32},
        "sbom": {"uri": "https://hayabusa.example/sbom/hps-2.1.0.cdx.json", "sha256": "34" * 32},
    }


def details_for(w: World, event: LifecycleEvent) -> dict[str, Any]:
    """Valid details of each event in the happy chain."""
    return {
        E.MANUFACTURED: {},
        E.FIRMWARE_INSTALLED: firmware("2.0.0"),
        E.TESTED: {"result": "pass", "report_sha256": DIGEST, "station": "EOL-1"},
        E.SHIPPED: {"recipient": party(MUSTER, MUSTER_ID), "reference": "DN-2026-0042"},
        E.RECEIVED: {"sender": party(HAYABUSA, HAYABUSA_ID), "reference": "GR-7781"},
        E.INTEGRATED: {"product": product(w)},
        E.FIRMWARE_UPDATED: firmware("2.1.0"),
    }[event]


def sign(
    actor: Actor,
    event: LifecycleEvent,
    *,
    details: dict[str, Any],
    previous: SignedStatement | None,
    component: Component,
    claimed: datetime,
) -> SignedStatement:
    payload = build_statement(
        component, event, details=details, previous=previous, claimed_time=claimed
    )
    return sign_statement(payload, actor.identity.signer, actor.chain)


class ChainBuilder:
    """Appends statements to one component's chain, each logged a day after the last."""

    def __init__(self, w: World, component: Component | None = None, *, start: float = 1) -> None:
        self.world = w
        self.component = component or w.component
        self.records: list[LoggedStatement] = []
        self.day = start

    def add(
        self,
        actor: Actor,
        event: LifecycleEvent,
        details: dict[str, Any] | None = None,
        *,
        day: float | None = None,
        previous: SignedStatement | str | None = "last",
        component: Component | None = None,
    ) -> ChainBuilder:
        if previous == "last":
            previous = self.records[-1].statement if self.records else None
        assert not isinstance(previous, str)
        self.day = day if day is not None else (self.day + 1 if self.records else self.day)
        signed = sign(
            actor,
            event,
            details=details_for(self.world, event) if details is None else details,
            previous=previous,
            component=component or self.component,
            claimed=at(self.day),
        )
        self.records.append(
            LoggedStatement(
                signed, at(self.day), "log", log="hayabusa.example/log", index=len(self.records)
            )
        )
        return self


def happy(w: World) -> list[LoggedStatement]:
    """Manufactured, firmware installed by the sensor itself, tested, shipped, received,
    integrated into the press, firmware updated by Muster's software and by the press."""
    return (
        ChainBuilder(w)
        .add(w.cell, E.MANUFACTURED)
        .add(w.sensor, E.FIRMWARE_INSTALLED)
        .add(w.station, E.TESTED)
        .add(w.hayabusa, E.SHIPPED)
        .add(w.clerk, E.RECEIVED)
        .add(w.press, E.INTEGRATED)
        .add(w.line, E.FIRMWARE_UPDATED)
        .add(w.press, E.FIRMWARE_UPDATED, firmware("2.2.0"))
        .records
    )
