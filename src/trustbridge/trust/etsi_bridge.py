"""ETSI TS 119 612 trusted lists as trustbridge trust lists: EU providers recognized alike.

A verified EU list (:mod:`trustbridge.trust.etsi`) becomes a :class:`TrustList` of the scheme the
relying party gives it (``eu``, say, with its own levels): each CA service is listed at the level
its service type maps to, TSA and OCSP services as such, and each status history entry becomes
``granted`` (TS 119 612's granted statuses) or ``withdrawn`` (every other status). The resolver's
trust-list route then treats an EU trust service provider exactly like one of our own lists,
with the LOTL's equivalence table mapping the ``eu`` levels onto the reference levels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from cryptography import x509

from trustbridge.errors import InputError
from trustbridge.pki.profiles import SubjectKind
from trustbridge.trust.etsi import EtsiTrustedList, TrustService, is_granted
from trustbridge.trust.lists import (
    Operator,
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
)
from trustbridge.trust.schemes import TrustScheme

__all__ = ["ETSI_CA_TYPES", "ETSI_OCSP_TYPES", "ETSI_TSA_TYPES", "trust_list_from_etsi"]

_SVC = "http://uri.etsi.org/TrstSvc/Svctype/"
#: CA service types: qualified certificates (QC) and other public key certificates (PKC).
ETSI_CA_TYPES = frozenset({f"{_SVC}CA/QC", f"{_SVC}CA/PKC"})
ETSI_TSA_TYPES = frozenset({f"{_SVC}TSA/QTST", f"{_SVC}TSA", f"{_SVC}TSA/TSS-QC"})
ETSI_OCSP_TYPES = frozenset({f"{_SVC}Certstatus/OCSP/QC", f"{_SVC}Certstatus/OCSP"})


def _kind(service_type: str) -> ServiceKind | None:
    if service_type in ETSI_CA_TYPES:
        return ServiceKind.CA
    if service_type in ETSI_TSA_TYPES:
        return ServiceKind.TSA
    if service_type in ETSI_OCSP_TYPES:
        return ServiceKind.OCSP
    return None


def _history(service: TrustService) -> tuple[StatusChange, ...]:
    entries = sorted(
        [(h.starting_time, h.status) for h in service.history]
        + [(service.status_starting_time, service.status)]
    )
    changes: list[StatusChange] = []
    for started, status in entries:
        mapped = ServiceStatus.GRANTED if is_granted(status) else ServiceStatus.WITHDRAWN
        when = started.replace(microsecond=0)
        if changes and changes[-1].since >= when:
            # Same second (or out of order in the source): the later entry wins.
            changes[-1] = StatusChange(mapped, changes[-1].since)
            continue
        if changes and changes[-1].status is mapped:
            continue
        changes.append(StatusChange(mapped, when))
    return tuple(changes)


_ORG_ID = re.compile(r"^(?:(?:VAT|NTR|PSD|LEI)[A-Z]{2}|[A-Z]{2}:[A-Z]{2})-[A-Za-z0-9.\-/]{1,50}$")


def _identifier(trade_names: tuple[str, ...], name: str, territory: str) -> str:
    """The provider's EN 319 412-1 identifier as TS 119 612 lists it among its trade names."""
    for trade_name in trade_names:
        if _ORG_ID.match(trade_name.strip()):
            return trade_name.strip()
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")[:50] or "unknown"
    return f"NTR{territory}-{slug}"


def trust_list_from_etsi(
    etsi: EtsiTrustedList,
    *,
    scheme: TrustScheme,
    levels: Mapping[str, str],
    list_id: str | None = None,
) -> TrustList:
    """The trust list of a verified ETSI list, for ``scheme``.

    ``levels`` maps CA service types (``.../Svctype/CA/QC``) to level names of ``scheme``; CA
    services of other types are left out (their level would be a guess). Services without a
    certificate are left out too: nothing could be matched against them.
    """
    unknown = [name for name in levels.values() if name not in {lv.name for lv in scheme.levels}]
    if unknown:
        raise InputError(f"levels {unknown} are not levels of scheme {scheme.code}")
    providers: list[Provider] = []
    for tsp in etsi.providers:
        services: list[Service] = []
        for service in tsp.services:
            kind = _kind(service.service_type)
            certificates: tuple[x509.Certificate, ...] = tuple(
                c for identity in service.identities for c in identity.certificates
            )
            if kind is None or not certificates:
                continue
            extra: dict[str, object] = {}
            if kind is ServiceKind.CA:
                level = levels.get(service.service_type)
                if level is None:
                    continue
                extra = {
                    "subject_kinds": tuple(SubjectKind),
                    "levels": (scheme.level(level),),
                }
            services.append(
                Service(
                    name=service.name[:200] or service.service_type,
                    kind=kind,
                    certificates=certificates,
                    status_history=_history(service),
                    **extra,  # type: ignore[arg-type]
                )
            )
        if services:
            providers.append(
                Provider(
                    name=tsp.name[:200],
                    country=etsi.territory,
                    organization_identifier=_identifier(tsp.trade_names, tsp.name, etsi.territory),
                    services=tuple(services),
                )
            )
    issued = etsi.issued_at.replace(microsecond=0)
    next_update = etsi.next_update or issued + timedelta(days=180)
    return TrustList(
        id=list_id or scheme.code,
        scheme=scheme,
        operator=Operator(etsi.operator_name[:200], etsi.territory),
        sequence=etsi.sequence_number,
        issued_at=issued,
        next_update=next_update,
        providers=tuple(providers),
    )
