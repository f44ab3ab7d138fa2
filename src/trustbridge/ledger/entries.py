"""What a log entry says: its kind, the log's time of appending, and a body of plain data.

An entry's bytes are canonical JSON (sorted keys, no spaces, UTF-8), so that the RFC 9162 leaf
hash of an entry is reproducible by anyone who holds it. The time is the log's own clock when it
appended the entry; a checkpoint signed over the tree commits the log to it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError
from trustbridge.ledger.merkle import leaf_hash

__all__ = ["EntryKind", "LogEntry", "canonical_json"]

#: Entries larger than this are refused (a provenance statement with its chain is a few KB).
MAX_ENTRY_BYTES = 256 * 1024


class EntryKind(enum.StrEnum):
    """Everything of consequence a node logs."""

    CERTIFICATE_ISSUED = "certificate.issued"
    CERTIFICATE_STATUS = "certificate.status"
    TRUST_LIST = "trust-list.published"
    LOTL = "lotl.published"
    CREDENTIAL_ISSUED = "credential.issued"
    CREDENTIAL_STATUS = "credential.status"
    CONTRACT = "contract.concluded"
    MESSAGE_RECEIPT = "message.receipt"
    PROVENANCE = "provenance.statement"
    #: Appended by hand (``trustbridge log append``): an operator's note, a document digest.
    RECORD = "record"


@dataclass(frozen=True)
class LogEntry:
    """One leaf of a node's log."""

    kind: EntryKind
    time: datetime
    body: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", ensure_utc(self.time))

    def to_bytes(self) -> bytes:
        try:
            data = canonical_json(
                {"kind": self.kind.value, "time": self.time.isoformat(), "body": dict(self.body)}
            )
        except (UnicodeEncodeError, TypeError, ValueError) as exc:
            raise InputError(f"a {self.kind.value} log entry cannot be encoded: {exc}") from None
        if len(data) > MAX_ENTRY_BYTES:
            raise InputError(
                f"a {self.kind.value} log entry of {len(data)} bytes is larger than the "
                f"{MAX_ENTRY_BYTES} bytes a log entry may have"
            )
        return data

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "a log entry") -> LogEntry:
        """Parse an entry; refuse bytes that are not its canonical form (one entry, one hash)."""
        try:
            value = json.loads(data)
            kind = EntryKind(value["kind"])
            time = datetime.fromisoformat(value["time"])
            body = value["body"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{source} is not a trustbridge log entry: {exc}") from None
        if time.tzinfo is None or not isinstance(body, dict):
            raise InputError(f"{source} is not a trustbridge log entry: bad time or body")
        entry = cls(kind, time, body)
        if entry.to_bytes() != data:
            raise InputError(f"{source} is not in canonical form")
        return entry
