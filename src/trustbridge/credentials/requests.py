"""Credential requests: what an issuer is asked to vouch for, as plain data (YAML or a dict).

```yaml
subject:
  element: product            # organization | system | product | person | procedure | data
  name: HPS-200 pressure sensor
  organization: NTRJP-3180001012345
  partNumber: HPS-200         # product details are optional
  globalAssetId: https://hayabusa.example/aas/HPS-200
claims:
  - criterion: iec-61508      # the characteristic comes from the catalogue
    value: SIL2
    scope: pressure sensor model HPS-200, firmware 2.x
evidence:
  kind: certificate           # self-declaration | certificate | audit
  reference: FCA-61508-2026-0042
valid_days: 365
```

A subject without ``id`` gets a stable one: an organization ``urn:trustbridge:org:<id>``, a
product its ``globalAssetId`` or ``urn:trustbridge:product:<org>:<part>[:<serial>]``, anything
else ``urn:trustbridge:<element>:<org>:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import yaml
from pydantic import ValidationError

from trustbridge.credentials.criteria import Catalogue, ElementKind, EvidenceKind
from trustbridge.credentials.model import (
    Claim,
    Evidence,
    Issuer,
    ProfileSubject,
    TrustCredential,
    issuer_id_for,
)
from trustbridge.errors import InputError

__all__ = ["DEFAULT_VALIDITY", "credential_from_request", "load_request", "subject_id_for"]

DEFAULT_VALIDITY = timedelta(days=365)
_MAX_VALIDITY_DAYS = 5 * 366
_KEYS = frozenset({"subject", "claims", "evidence", "valid_days", "id"})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def subject_id_for(subject: Mapping[str, Any]) -> str:
    """The stable identifier of a subject that names none."""
    element = ElementKind(subject["element"])
    organization = str(subject["organization"])
    if element is ElementKind.ORGANIZATION:
        return issuer_id_for(organization)
    if element is ElementKind.PRODUCT:
        if subject.get("globalAssetId"):
            return str(subject["globalAssetId"])
        part = subject.get("partNumber") or _slug(str(subject["name"]))
        serial = f":{subject['serialNumber']}" if subject.get("serialNumber") else ""
        return f"urn:trustbridge:product:{organization}:{part}{serial}"
    return f"urn:trustbridge:{element.value}:{organization}:{_slug(str(subject['name']))}"


def load_request(data: bytes, *, source: str) -> dict[str, Any]:
    """Parse a YAML request (safe loader) into a mapping; errors name the file and line."""
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source} is not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise InputError(f"{source} must hold a mapping with subject, claims and evidence")
    return loaded


def credential_from_request(
    request: Mapping[str, Any],
    *,
    issuer: Issuer,
    at: datetime,
    catalogue: Catalogue | None = None,
    source: str = "the request",
) -> TrustCredential:
    """A credential draft from a request, its values checked against the catalogue."""
    catalogue = catalogue or Catalogue.default()
    unknown = sorted(set(request) - _KEYS)
    if unknown:
        raise InputError(f"{source}: unknown member(s) {', '.join(unknown)}")
    for name in ("subject", "claims", "evidence"):
        if name not in request:
            raise InputError(f"{source}: {name} is missing")
    subject = request["subject"]
    claims = request["claims"]
    evidence = request["evidence"]
    if not isinstance(subject, Mapping) or not isinstance(evidence, Mapping):
        raise InputError(f"{source}: subject and evidence must be mappings")
    if not isinstance(claims, list) or not claims:
        raise InputError(f"{source}: claims must be a non-empty list")
    days = request.get("valid_days", DEFAULT_VALIDITY.days)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_VALIDITY_DAYS:
        raise InputError(f"{source}: valid_days must be a whole number from 1 to 1830")
    try:
        subject_data = dict(subject)
        if "element" not in subject_data or "organization" not in subject_data:
            raise InputError(f"{source}: the subject needs element and organization")
        try:
            subject_data.setdefault("id", subject_id_for(subject_data))
        except ValueError:
            raise InputError(
                f"{source}: subject element {subject_data['element']!r} is none of "
                f"{', '.join(e.value for e in ElementKind)}"
            ) from None
        claim_models = []
        for index, claim in enumerate(claims):
            if not isinstance(claim, Mapping) or "criterion" not in claim:
                raise InputError(f"{source}: claims[{index}] needs a criterion")
            criterion = catalogue.get(str(claim["criterion"]))
            data = {"characteristic": criterion.characteristic.value, **claim}
            model = Claim.model_validate(data)
            value = criterion.check_value(model.value)
            claim_models.append(model.model_copy(update={"value": value}))
        draft = TrustCredential(
            **({"id": request["id"]} if "id" in request else {}),
            issuer=issuer,
            subject=ProfileSubject.model_validate(subject_data),
            claims=tuple(claim_models),
            evidence=Evidence.model_validate(dict(evidence)),
            valid_from=at,
            valid_until=at + timedelta(days=days),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{source}: {where + ': ' if where else ''}{first['msg']}") from None
    evidence_model = draft.evidence
    if evidence_model.kind is EvidenceKind.AUDIT:
        missing = [n for n in ("auditor", "scope") if getattr(evidence_model, n) is None]
        if missing:
            raise InputError(f"{source}: audit evidence needs {', '.join(missing)}")
    for claim in draft.claims:
        criterion = catalogue.get(claim.criterion)
        criterion.check_evidence(draft.evidence.kind)
        criterion.check_element(draft.subject.element)
    return draft
