"""The trustworthiness profile of one subject, aggregated from verified credentials.

A :class:`TrustProfile` gathers the claims that verified credentials (:class:`Verdict` s) make
about one subject and that hold at a given time. Each :class:`ProfileClaim` keeps where it came
from: the evidence behind it, the issuer, the credential, and how the issuer's trust was
established. Several claims may name the same criterion (a self-declaration and a certificate,
say); all are kept and :meth:`TrustProfile.best` picks the strongest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trustbridge.clock import ensure_utc
from trustbridge.credentials.criteria import Characteristic, EvidenceKind, Value
from trustbridge.credentials.model import Claim, Issuer, ProfileSubject, Verdict
from trustbridge.errors import InputError, NotFoundError

__all__ = ["ProfileClaim", "TrustProfile"]

# Subject members every credential about the subject must agree on; the optional ones (part and
# serial number, globalAssetId, location) may be left out of a credential, or left undisclosed
# in an SD-JWT presentation, but must not contradict another credential.
_IDENTIFYING = ("element", "name", "organization")
_OPTIONAL = ("part_number", "serial_number", "global_asset_id", "location")


def _rfc3339(value: datetime) -> str:
    return f"{ensure_utc(value):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class ProfileClaim:
    """One claim of a verified credential, with its provenance and effective validity.

    ``valid_from`` / ``valid_until`` are the claim's own ``validFrom`` / ``validUntil`` within the
    credential's validity period; the claim holds at ``t`` when ``valid_from <= t < valid_until``
    (VCDM 2.0 section 4.9: the credential ceases to be valid at ``validUntil``).
    """

    claim: Claim
    evidence: EvidenceKind
    issuer: Issuer
    credential_id: str
    format: str
    #: How the issuer's identity resolved: route and reference level (from the :class:`Verdict`).
    issuer_route: str
    issuer_level: str | None
    #: The trust list service that accredits the issuer; None for a self-declaration.
    accredited_by: str | None
    valid_from: datetime
    valid_until: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "valid_from", ensure_utc(self.valid_from))
        object.__setattr__(self, "valid_until", ensure_utc(self.valid_until))
        if self.valid_until <= self.valid_from:
            raise InputError(
                f"claim {self.claim.criterion} of credential {self.credential_id}: "
                f"valid until {_rfc3339(self.valid_until)} is not after valid from "
                f"{_rfc3339(self.valid_from)}"
            )

    @classmethod
    def from_verdict(cls, verdict: Verdict, claim: Claim) -> ProfileClaim | None:
        """``claim`` of ``verdict``'s credential; None where the claim's own period lies outside
        the credential's, so that it is never valid."""
        credential = verdict.credential
        starts = [credential.valid_from] + ([claim.valid_from] if claim.valid_from else [])
        ends = [credential.valid_until] + ([claim.valid_until] if claim.valid_until else [])
        valid_from, valid_until = max(starts), min(ends)
        if valid_until <= valid_from:
            return None
        return cls(
            claim=claim,
            evidence=credential.evidence.kind,
            issuer=credential.issuer,
            credential_id=credential.id,
            format=verdict.format,
            issuer_route=verdict.issuer_route,
            issuer_level=verdict.issuer_level,
            accredited_by=verdict.accredited_by,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    @property
    def characteristic(self) -> Characteristic:
        return self.claim.characteristic

    @property
    def criterion(self) -> str:
        return self.claim.criterion

    @property
    def value(self) -> Value:
        return self.claim.value

    @property
    def scope(self) -> str:
        return self.claim.scope

    def valid_at(self, at: datetime) -> bool:
        """Whether the claim holds at ``at``."""
        return self.valid_from <= ensure_utc(at) < self.valid_until

    def strength_key(self) -> tuple[int, datetime, datetime, str]:
        """Orders claims on one criterion: stronger evidence, then newer, then longer-lived
        (the credential id breaks remaining ties so the order is total)."""
        return (self.evidence.strength, self.valid_from, self.valid_until, self.credential_id)

    def to_json(self, *, best: bool = False) -> dict[str, Any]:
        """The claim as :meth:`TrustProfile.to_json` lists it."""
        return {
            "criterion": self.criterion,
            "value": self.value,
            "scope": self.scope,
            "evidence": self.evidence.value,
            "issuer": self.issuer.name,
            "issuerId": self.issuer.id,
            "route": self.issuer_route,
            "level": self.issuer_level,
            "accreditedBy": self.accredited_by,
            "validFrom": _rfc3339(self.valid_from),
            "validUntil": _rfc3339(self.valid_until),
            "credentialId": self.credential_id,
            "format": self.format,
            "best": best,
        }


@dataclass(frozen=True)
class TrustProfile:
    """What verified credentials say about one subject, claim by claim."""

    subject: ProfileSubject
    claims: tuple[ProfileClaim, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", tuple(self.claims))

    @classmethod
    def from_verdicts(
        cls, subject_id: str, verdicts: Iterable[Verdict], *, at: datetime
    ) -> TrustProfile:
        """The profile of ``subject_id`` at ``at``.

        Keeps the verdicts whose credential subject is ``subject_id`` and, of their claims, those
        valid at ``at``. A claim that reaches the profile twice (the same credential verified
        twice, or presented with different disclosures) is kept once. Claims are ordered by
        characteristic (enum order), criterion, then strongest first.

        Raises :class:`~trustbridge.errors.NotFoundError` when no verdict is about the subject and
        :class:`~trustbridge.errors.InputError` when two credentials disagree on the subject's
        element, name or organization, or on an optional member both state.
        """
        at = ensure_utc(at)
        about = [v for v in verdicts if v.credential.subject.id == subject_id]
        if not about:
            raise NotFoundError(
                f"no verified credential is about subject {subject_id!r}",
                hint="verify credentials whose credentialSubject.id is this subject first",
            )
        subject = _merged_subject(about)
        seen: set[tuple[str, str]] = set()
        claims: list[ProfileClaim] = []
        for verdict in about:
            for claim in verdict.credential.claims:
                key = (verdict.credential.id, claim.criterion)
                if key in seen:
                    continue
                seen.add(key)
                profile_claim = ProfileClaim.from_verdict(verdict, claim)
                if profile_claim is not None and profile_claim.valid_at(at):
                    claims.append(profile_claim)
        order = {c: i for i, c in enumerate(Characteristic)}
        claims.sort(key=lambda c: c.strength_key(), reverse=True)
        claims.sort(key=lambda c: (order[c.characteristic], c.criterion))
        return cls(subject=subject, claims=tuple(claims))

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria the profile has claims on, each once, in claim order."""
        return tuple(dict.fromkeys(c.criterion for c in self.claims))

    def claims_for(self, criterion: str) -> tuple[ProfileClaim, ...]:
        """Every claim on ``criterion``."""
        return tuple(c for c in self.claims if c.criterion == criterion)

    def best(self, criterion: str) -> ProfileClaim | None:
        """The strongest claim on ``criterion``: audit over certificate over self-declaration,
        then the newest ``validFrom``; None when the profile has none."""
        return max(self.claims_for(criterion), key=ProfileClaim.strength_key, default=None)

    def by_characteristic(self) -> dict[Characteristic, list[ProfileClaim]]:
        """The claims grouped by characteristic; every characteristic is a key, in enum order."""
        grouped: dict[Characteristic, list[ProfileClaim]] = {c: [] for c in Characteristic}
        for claim in self.claims:
            grouped[claim.characteristic].append(claim)
        return grouped

    def to_json(self) -> dict[str, Any]:
        """The profile as JSON-ready data, in this layout::

            {
              "subject": {"id", "element", "name", "organization",
                          "partNumber"?, "serialNumber"?, "globalAssetId"?, "location"?},
              "characteristics": {
                "security": [
                  {"criterion", "value", "scope", "evidence", "issuer", "issuerId", "route",
                   "level", "accreditedBy", "validFrom", "validUntil", "credentialId",
                   "format", "best"},
                  ...
                ],
                "safety": [...], "privacy": [...], "reliability": [...], "resilience": [...]
              }
            }

        Every characteristic is present (possibly with an empty list), in enum order; ``issuer``
        is the issuer's name; times are RFC 3339 UTC; ``best`` marks the claim :meth:`best`
        returns for its criterion.
        """
        best = [self.best(criterion) for criterion in self.criteria]
        return {
            "subject": self.subject.json_dict(),
            "characteristics": {
                characteristic.value: [c.to_json(best=any(c is b for b in best)) for c in claims]
                for characteristic, claims in self.by_characteristic().items()
            },
        }


def _merged_subject(verdicts: list[Verdict]) -> ProfileSubject:
    """The subject all ``verdicts`` describe, with every optional member one of them states."""
    first = verdicts[0].credential
    subject = first.subject
    stated_by = dict.fromkeys((*_IDENTIFYING, *_OPTIONAL), first.id)
    for verdict in verdicts[1:]:
        credential = verdict.credential
        other = credential.subject
        for name in (*_IDENTIFYING, *_OPTIONAL):
            mine, theirs = getattr(subject, name), getattr(other, name)
            if theirs is None or mine == theirs:
                continue
            if mine is None:
                subject = subject.model_copy(update={name: theirs})
                stated_by[name] = credential.id
                continue
            raise InputError(
                f"subject {subject.id!r}: credential {stated_by[name]} gives {name} {mine!r}, "
                f"credential {credential.id} gives {theirs!r}",
                hint="a profile aggregates credentials about one subject; leave out the "
                "credential that describes it differently, or have it reissued",
            )
    return subject
