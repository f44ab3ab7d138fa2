"""Trust schemes and their ordered assurance levels, each a certificate policy OID."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.x509 import ObjectIdentifier

from trustbridge.errors import InputError, NotFoundError

__all__ = ["AssuranceLevel", "TrustScheme", "new_policy_oid"]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def new_policy_oid() -> ObjectIdentifier:
    """A fresh OID under the UUID arc 2.25 (ITU-T X.667): needs no registration."""
    return ObjectIdentifier(f"2.25.{uuid.uuid4().int}")


def parse_oid(text: str) -> ObjectIdentifier:
    if not _OID.match(text.strip()):
        raise InputError(f"{text!r} is not a dotted object identifier such as 2.25.1234")
    return ObjectIdentifier(text.strip())


@dataclass(frozen=True)
class AssuranceLevel:
    """One assurance level of a scheme; ``rank`` 1 is the lowest."""

    name: str
    oid: ObjectIdentifier
    rank: int

    def __post_init__(self) -> None:
        if not _CODE.match(self.name):
            raise InputError(
                f"level name {self.name!r} must be lowercase letters, digits and hyphens"
            )
        if self.rank < 1:
            raise InputError(f"level rank {self.rank} must be at least 1")


@dataclass(frozen=True)
class TrustScheme:
    """A national (or sectoral) trust scheme: a code, a name and its ordered levels."""

    code: str
    name: str
    levels: tuple[AssuranceLevel, ...]

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise InputError(
                f"scheme code {self.code!r} must be 2-32 lowercase letters, digits or hyphens, "
                "starting with a letter"
            )
        if not self.name.strip():
            raise InputError(f"scheme {self.code} needs a name")
        if not self.levels:
            raise InputError(f"scheme {self.code} needs at least one assurance level")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise InputError(f"scheme {self.code} has duplicate level names: {names}")
        oids = [lv.oid for lv in self.levels]
        if len(set(oids)) != len(oids):
            raise InputError(f"scheme {self.code} has duplicate level OIDs")
        ranks = [lv.rank for lv in self.levels]
        if ranks != list(range(1, len(ranks) + 1)):
            raise InputError(f"scheme {self.code}: level ranks must be 1..n in order")

    @classmethod
    def create(
        cls, code: str, name: str, levels: Sequence[tuple[str, ObjectIdentifier | None]]
    ) -> TrustScheme:
        """A scheme with levels in ascending order; levels without an OID get a fresh one."""
        return cls(
            code=code,
            name=name,
            levels=tuple(
                AssuranceLevel(n, oid or new_policy_oid(), rank)
                for rank, (n, oid) in enumerate(levels, start=1)
            ),
        )

    def level(self, name: str) -> AssuranceLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        known = ", ".join(lv.name for lv in self.levels)
        raise NotFoundError(f"scheme {self.code} has no level {name!r}", hint=f"levels: {known}")

    def level_by_oid(self, oid: ObjectIdentifier) -> AssuranceLevel | None:
        return next((lv for lv in self.levels if lv.oid == oid), None)
