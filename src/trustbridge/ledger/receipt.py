"""A receipt: proof that a log holds an entry, which anyone with the log's key can check.

It carries the entry itself, its index, a checkpoint signed by the log, and the inclusion proof
from the entry's leaf to that checkpoint's root (RFC 9162 2.1.3).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustbridge.errors import InputError
from trustbridge.ledger.entries import LogEntry
from trustbridge.ledger.errors import ProofError
from trustbridge.ledger.merkle import leaf_hash, verify_inclusion
from trustbridge.ledger.note import LogKey, SignedCheckpoint, WitnessKey, open_checkpoint

__all__ = ["Receipt"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{source}: {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{source}: {what} is not valid base64") from None


@dataclass(frozen=True)
class Receipt:
    """An entry, its index in a log, a checkpoint of that log, and the inclusion proof."""

    origin: str
    index: int
    entry: bytes
    checkpoint: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "index": self.index,
            "entry": _b64(self.entry),
            "checkpoint": self.checkpoint.decode(),
            "proof": [_b64(p) for p in self.proof],
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "a receipt") -> Receipt:
        if not isinstance(data, Mapping):
            raise InputError(f"{source} is not a JSON object")
        origin, index, checkpoint, proof = (
            data.get("origin"),
            data.get("index"),
            data.get("checkpoint"),
            data.get("proof"),
        )
        if not isinstance(origin, str) or not origin:
            raise InputError(f"{source} names no log origin")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InputError(f"{source}: index {index!r} is not a non-negative integer")
        if not isinstance(checkpoint, str):
            raise InputError(f"{source} carries no checkpoint")
        if not isinstance(proof, list):
            raise InputError(f"{source}: proof is not a list")
        return cls(
            origin=origin,
            index=index,
            entry=_unb64(data.get("entry"), "entry", source),
            checkpoint=checkpoint.encode(),
            proof=tuple(_unb64(p, "a proof hash", source) for p in proof),
        )

    def verify(
        self,
        log_key: LogKey,
        *,
        witnesses: Sequence[WitnessKey] = (),
        source: str = "a receipt",
    ) -> tuple[SignedCheckpoint, LogEntry]:
        """Check the checkpoint's signature and the entry's inclusion in it; raise
        :class:`~trustbridge.ledger.errors.CheckpointError` or ``ProofError`` otherwise."""
        signed = open_checkpoint(
            self.checkpoint, log_key, witnesses=witnesses, origin=self.origin, source=source
        )
        checkpoint = signed.checkpoint
        if self.index >= checkpoint.size:
            raise ProofError(
                f"{source}: entry {self.index} lies beyond the checkpoint's tree of "
                f"{checkpoint.size} entries"
            )
        verify_inclusion(
            leaf_hash(self.entry), self.index, checkpoint.size, self.proof, checkpoint.root
        )
        return signed, LogEntry.from_bytes(self.entry, source=f"the entry in {source}")
