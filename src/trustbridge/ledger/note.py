"""Checkpoints of the transparency log as C2SP signed notes, and witness cosignatures.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the log's signed tree head: the origin line,
the tree size and the base64 root hash, one per line. It travels as a signed note
(https://c2sp.org/signed-note): the text, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. The log signs with Ed25519 (signature type 0x01);
witnesses add timestamped Ed25519 cosignatures (https://c2sp.org/tlog-cosignature,
``cosignature/v1``, signature type 0x04).

Keys are named; a key ID is ``SHA-256(name || 0x0A || type || public key)[:4]`` and a verifier
key ("vkey") is ``<name>+<hex key ID>+base64(type || public key)``, as in Go's
``golang.org/x/mod/sumdb/note``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustbridge.errors import InputError
from trustbridge.ledger.errors import (
    CheckpointError,
    NoteFormatError,
    ProofError,
    RollbackError,
    SplitViewError,
)
from trustbridge.ledger.merkle import HASH_SIZE, verify_consistency
from trustbridge.pki.keys import KeyType
from trustbridge.pki.signers import Signer, sign_bytes

__all__ = [
    "EM_DASH",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Cosignature",
    "LogKey",
    "SignedCheckpoint",
    "WitnessKey",
    "add_signatures",
    "check_update",
    "cosign",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
]

EM_DASH = "\u2014"
"""The em dash that starts every signature line of a signed note."""

MAX_NOTE_SIZE = 64 * 1024
"""The largest signed note we read, in bytes (a checkpoint with 100 Ed25519 lines is ~15 kB)."""

MAX_SIGNATURES = 100
"""The most signature lines we read in one note (the spec requires accepting at least 16)."""

_SIGNATURE_PREFIX = EM_DASH + " "
_TYPE_ED25519 = 0x01
_TYPE_COSIGNATURE_V1 = 0x04
_KEY_ID_SIZE = 4
_ED25519_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = (1 << 63) - 1
_MAX_TREE_SIZE = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_COSIGNATURE_HEADER = b"cosignature/v1\n"


def _in(source: str) -> str:
    return f" in {source}" if source else ""


def _b64decode(text: str) -> bytes | None:
    """Standard base64 with padding and nothing else (RFC 4648 section 4), or None."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:
        return None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _has_control(text: str) -> bool:
    """ASCII control characters (below U+0020), which signed notes must not contain."""
    return any(ord(char) < 0x20 for char in text)


def _check_name(name: str, what: str, source: str = "") -> None:
    """Key names are non-empty, without Unicode spaces, '+' or control characters."""
    if not isinstance(name, str) or not name:
        raise NoteFormatError(f"{what}{_in(source)} has an empty key name")
    if any(char.isspace() or char == "+" for char in name) or _has_control(name):
        raise NoteFormatError(
            f"{what}{_in(source)}: key name {name!r} contains a space, '+' or control character"
        )


# -- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NoteKey:
    """A named Ed25519 public key of one signature type (the subclass says which)."""

    name: str
    public_key: Ed25519PublicKey = field(compare=False)
    _raw: bytes = field(init=False, repr=False)
    _key_id: bytes = field(init=False, repr=False, compare=False)

    _signature_type: ClassVar[int]
    _kind: ClassVar[str]

    def __post_init__(self) -> None:
        _check_name(self.name, self._kind)
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise InputError(
                f"{self._kind} {self.name!r} needs an Ed25519 public key, "
                f"not {type(self.public_key).__name__}"
            )
        raw = self.public_key.public_bytes_raw()
        key_id = hashlib.sha256(
            self.name.encode() + b"\n" + bytes([self._signature_type]) + raw
        ).digest()[:_KEY_ID_SIZE]
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_key_id", key_id)

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || signature type || public key)[:4]."""
        return self._key_id

    @property
    def vkey(self) -> str:
        """The verifier key text: ``<name>+<8 hex digits of the key ID>+base64(type || key)``."""
        material = _b64encode(bytes([self._signature_type]) + self._raw)
        return f"{self.name}+{self._key_id.hex()}+{material}"

    @classmethod
    def from_vkey(cls, text: str, *, source: str = "") -> Self:
        """Parse a verifier key; its key ID must match its name, type and key."""
        what = "verifier key"
        # The name has no '+' and the key ID none; base64 may: split at the first two only.
        parts = text.strip().split("+", 2) if isinstance(text, str) else []
        if len(parts) != 3:
            raise NoteFormatError(
                f"{what}{_in(source)} is not of the form <name>+<key id>+<base64 key>"
            )
        name, key_id_text, material_text = parts
        _check_name(name, what, source)
        if not re.fullmatch(r"[0-9a-fA-F]{8}", key_id_text):
            raise NoteFormatError(
                f"{what} {name!r}{_in(source)}: key ID {key_id_text!r} is not 8 hex digits"
            )
        material = _b64decode(material_text)
        if material is None:
            raise NoteFormatError(f"{what} {name!r}{_in(source)}: the key is not valid base64")
        if len(material) != 33 or material[0] != cls._signature_type:
            found = (
                f"it has type 0x{material[0]:02x} and {len(material) - 1} bytes"
                if material
                else "it is empty"
            )
            raise NoteFormatError(
                f"{what} {name!r}{_in(source)} is not a {cls._kind} (signature type "
                f"0x{cls._signature_type:02x} and a 32-byte Ed25519 key): {found}",
            )
        try:
            public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        except ValueError as error:
            raise NoteFormatError(
                f"{what} {name!r}{_in(source)}: not an Ed25519 public key"
            ) from error
        key = cls(name, public_key)
        if key.key_id != bytes.fromhex(key_id_text):
            raise NoteFormatError(
                f"{what} {name!r}{_in(source)}: key ID {key_id_text.lower()} does not match "
                f"the name and key (expected {key.key_id.hex()})"
            )
        return key

    @classmethod
    def for_signer(cls, signer: Signer, *, name: str) -> Self:
        """The public key of an Ed25519 signer under ``name``."""
        return cls(name, _ed25519_public_key(signer, cls._kind))


class LogKey(_NoteKey):
    """A log's checkpoint key: Ed25519 note signatures, signature type 0x01."""

    _signature_type = _TYPE_ED25519
    _kind = "log key"


class WitnessKey(_NoteKey):
    """A witness's cosigning key: ``cosignature/v1`` Ed25519 signatures, signature type 0x04."""

    _signature_type = _TYPE_COSIGNATURE_V1
    _kind = "witness key"


def _ed25519_public_key(signer: Signer, kind: str) -> Ed25519PublicKey:
    public_key = signer.public_key
    if signer.key_type is not KeyType.ED25519 or not isinstance(public_key, Ed25519PublicKey):
        raise InputError(
            f"{signer.description} holds a {signer.key_type} key, but a {kind} must be Ed25519 "
            f"(C2SP signed notes and cosignature/v1)",
            hint="generate the key with key type ed25519",
        )
    return public_key


# -- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The text of a checkpoint: a log's origin, tree size and root hash (tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.extensions, str):
            raise NoteFormatError("checkpoint extensions must be a sequence of lines, not a str")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        _check_checkpoint_fields(self.origin, self.size, self.root, self.extensions, "")

    def body(self) -> bytes:
        """The note text: origin, size and base64 root, then extension lines, each with '\\n'."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode()

    @classmethod
    def parse(cls, body: bytes, *, source: str = "") -> Checkpoint:
        """Parse checkpoint text strictly: the result's ``body()`` is exactly ``body``."""
        what = f"checkpoint{_in(source)}"
        if not isinstance(body, bytes):
            raise NoteFormatError(f"{what} is {type(body).__name__}, not bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NoteFormatError(f"{what} is not valid UTF-8") from error
        if not text.endswith("\n"):
            raise NoteFormatError(f"{what} does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteFormatError(
                f"{what} has {len(lines)} lines; it needs the origin, the tree size and "
                f"the root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise NoteFormatError(
                f"{what}: tree size {size_text!r} is not a decimal number without leading zeros"
            )
        size = int(size_text)
        root = _b64decode(root_text)
        if root is None:
            raise NoteFormatError(f"{what}: root hash {root_text!r} is not valid base64")
        if len(root) == HASH_SIZE and _b64encode(root) != root_text:
            raise NoteFormatError(f"{what}: root hash {root_text!r} is not canonical base64")
        _check_checkpoint_fields(origin, size, root, tuple(extensions), source)
        return cls(origin, size, root, tuple(extensions))


def _check_checkpoint_fields(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...], source: str
) -> None:
    what = f"checkpoint{_in(source)}"
    if not isinstance(origin, str) or not origin:
        raise NoteFormatError(f"{what} has an empty origin line")
    if _has_control(origin):
        raise NoteFormatError(f"{what}: origin {origin!r} contains a newline or control character")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_TREE_SIZE:
        raise NoteFormatError(f"{what}: tree size {size!r} is not an integer from 0 to 2**64-1")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        shown = f"{len(root)} bytes" if isinstance(root, bytes) else type(root).__name__
        raise NoteFormatError(f"{what}: root hash is {shown}, not a {HASH_SIZE}-byte hash")
    for number, line in enumerate(extensions, start=4):
        if not isinstance(line, str) or not line:
            raise NoteFormatError(f"{what}: extension line {number} is empty")
        if _has_control(line):
            raise NoteFormatError(
                f"{what}: extension line {number} contains a newline or control character"
            )


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: the witness that made it and when it says it did."""

    name: str
    time: datetime


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature (and the listed cosignatures) verified."""

    checkpoint: Checkpoint
    note: bytes
    signers: tuple[str, ...]
    cosignatures: tuple[Cosignature, ...] = ()


# -- signed notes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_id: bytes
    signature: bytes
    line: str


def _parse_signature_line(line: str, what: str, source: str) -> _SignatureLine:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteFormatError(
            f"{what}{_in(source)}: signature line {line[:40]!r} does not start with an em dash "
            f"(U+2014) and a space"
        )
    name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not space:
        raise NoteFormatError(
            f"{what}{_in(source)}: signature line {line[:40]!r} has no space between the key "
            f"name and the signature"
        )
    _check_name(name, what, source)
    decoded = _b64decode(encoded)
    if decoded is None or len(decoded) <= _KEY_ID_SIZE:
        raise NoteFormatError(
            f"{what}{_in(source)}: the signature by {name} is not base64 of a key ID and "
            f"a signature"
        )
    return _SignatureLine(name, decoded[:_KEY_ID_SIZE], decoded[_KEY_ID_SIZE:], line)


def _parse_note(note: bytes, what: str, source: str) -> tuple[bytes, list[_SignatureLine]]:
    """Split a signed note into its text (with the final newline) and its signature lines."""
    if not isinstance(note, bytes):
        raise NoteFormatError(f"{what}{_in(source)} is {type(note).__name__}, not bytes")
    if len(note) > MAX_NOTE_SIZE:
        raise NoteFormatError(
            f"{what}{_in(source)} has {len(note)} bytes, more than the {MAX_NOTE_SIZE} we read"
        )
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoteFormatError(f"{what}{_in(source)} is not valid UTF-8") from error
    if _has_control(text.replace("\n", "")):
        raise NoteFormatError(f"{what}{_in(source)} contains a control character")
    if not text.endswith("\n"):
        raise NoteFormatError(f"{what}{_in(source)} does not end with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteFormatError(
            f"{what}{_in(source)} has no blank line between its text and its signatures"
        )
    body, signature_block = text[: split + 1], text[split + 2 :]
    if not signature_block:
        raise NoteFormatError(f"{what}{_in(source)} has no signature lines")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(
            f"{what}{_in(source)} has {len(lines)} signature lines, more than the "
            f"{MAX_SIGNATURES} we read"
        )
    return body.encode(), [_parse_signature_line(line, what, source) for line in lines]


def _verify_signed_by(
    body: bytes, lines: Sequence[_SignatureLine], key: LogKey, what: str, source: str
) -> None:
    """Require a valid note signature by ``key``; every line that claims to be by it must verify."""
    mine = [line for line in lines if line.name == key.name and line.key_id == key.key_id]
    if not mine:
        raise CheckpointError(
            f"{what}{_in(source)}: no signature by {key.name} (key ID {key.key_id.hex()})",
            hint="is the note from this log, and is the log key configured right?",
        )
    for line in mine:
        try:
            if len(line.signature) != _ED25519_SIGNATURE_SIZE:
                raise InvalidSignature
            key.public_key.verify(line.signature, body)
        except InvalidSignature:
            raise CheckpointError(
                f"{what}{_in(source)}: bad signature by {key.name}: the text was changed "
                f"or the signature forged"
            ) from None


def _signature_line(name: str, signature: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {_b64encode(signature)}"


def sign_note(text: bytes, signer: Signer, *, name: str) -> bytes:
    """Sign ``text`` (UTF-8, ending in a newline) as a note with the Ed25519 key ``name``."""
    key = LogKey.for_signer(signer, name=name)
    if not isinstance(text, bytes):
        raise NoteFormatError(f"note text to sign is {type(text).__name__}, not bytes")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoteFormatError("note text to sign is not valid UTF-8") from error
    if not decoded.endswith("\n") or _has_control(decoded.replace("\n", "")):
        raise NoteFormatError(
            "note text to sign must end with a newline and contain no control characters"
        )
    signature = sign_bytes(signer, text)
    line = _signature_line(key.name, key.key_id + signature)
    return text + b"\n" + line.encode() + b"\n"


def open_note(note: bytes, key: LogKey, *, source: str = "") -> bytes:
    """Verify a signed note by ``key`` and return its text (with the final newline).

    Signature lines of other keys are ignored; a line by ``key`` that does not verify is an
    error (CheckpointError), as is a note without one.
    """
    body, lines = _parse_note(note, "signed note", source)
    _verify_signed_by(body, lines, key, "signed note", source)
    return body


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer, *, name: str) -> bytes:
    """The signed note of ``checkpoint``: its body, a blank line and the log's signature line."""
    return sign_note(checkpoint.body(), signer, name=name)


def _cosigned_message(body: bytes, timestamp: int) -> bytes:
    # tlog-cosignature, "Ed25519 signed message": header line, time line, checkpoint body.
    return _COSIGNATURE_HEADER + b"time " + str(timestamp).encode() + b"\n" + body


def _verify_cosignature(
    body: bytes, line: _SignatureLine, key: WitnessKey, what: str, source: str
) -> Cosignature:
    if len(line.signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
        raise CheckpointError(
            f"{what}{_in(source)}: the cosignature by {key.name} is not a timestamped "
            f"Ed25519 signature"
        )
    timestamp = int.from_bytes(line.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise CheckpointError(f"{what}{_in(source)}: the cosignature by {key.name} has a bad time")
    try:
        key.public_key.verify(line.signature[_TIMESTAMP_SIZE:], _cosigned_message(body, timestamp))
    except InvalidSignature:
        raise CheckpointError(
            f"{what}{_in(source)}: bad cosignature by {key.name}: the checkpoint or time was "
            f"changed or the cosignature forged"
        ) from None
    try:
        time = datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise CheckpointError(
            f"{what}{_in(source)}: the cosignature by {key.name} has a time out of range "
            f"({timestamp})"
        ) from None
    return Cosignature(key.name, time)


def open_checkpoint(
    note: bytes,
    log_key: LogKey,
    *,
    witnesses: Sequence[WitnessKey] = (),
    origin: str | None = None,
    source: str = "",
) -> SignedCheckpoint:
    """Verify a signed checkpoint and the cosignatures of the given witnesses.

    Requires a valid signature by ``log_key``; signature lines of unknown keys are ignored
    (signed-note); a line by ``log_key`` or by one of ``witnesses`` that does not verify fails
    the whole checkpoint. With ``origin``, the checkpoint must be for that log. Counting
    cosignatures against a quorum is the caller's policy.
    """
    what = "checkpoint"
    body, lines = _parse_note(note, what, source)
    _verify_signed_by(body, lines, log_key, what, source)
    checkpoint = Checkpoint.parse(body, source=source)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"{what}{_in(source)} is for the log {checkpoint.origin!r}, not {origin!r}"
        )
    known = {(witness.name, witness.key_id): witness for witness in witnesses}
    cosignatures: list[Cosignature] = []
    signers = [log_key.name]
    seen_lines: set[str] = set()
    for line in lines:
        witness = known.get((line.name, line.key_id))
        if witness is None or line.line in seen_lines:
            continue
        seen_lines.add(line.line)
        cosignatures.append(_verify_cosignature(body, line, witness, what, source))
        if witness.name not in signers:
            signers.append(witness.name)
    return SignedCheckpoint(checkpoint, note, tuple(signers), tuple(cosignatures))


def cosign(
    note_or_checkpoint: bytes | Checkpoint | SignedCheckpoint,
    signer: Signer,
    *,
    name: str,
    at: datetime,
) -> str:
    """A witness's ``cosignature/v1`` signature line for a checkpoint, timestamped ``at``.

    A witness cosigns only what it checked: open the log's note with :func:`open_checkpoint`
    and check it against the last one seen with :func:`check_update` first. Append the line
    with :func:`add_signatures`.
    """
    if isinstance(note_or_checkpoint, SignedCheckpoint):
        body = note_or_checkpoint.checkpoint.body()
    elif isinstance(note_or_checkpoint, Checkpoint):
        body = note_or_checkpoint.body()
    else:
        text, _ = _parse_note(note_or_checkpoint, "checkpoint to cosign", "")
        body = Checkpoint.parse(text).body()
    key = WitnessKey.for_signer(signer, name=name)
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InputError(f"cosignature time {at!r} is not a timezone-aware datetime")
    timestamp = int(at.timestamp())
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise InputError(f"cosignature time {at.isoformat()} is before 1970")
    signature = sign_bytes(signer, _cosigned_message(body, timestamp))
    return _signature_line(
        name, key.key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
    )


def add_signatures(note: bytes, lines: Sequence[str]) -> bytes:
    """Append signature lines (as :func:`cosign` returns them) to a signed note.

    Lines already in the note are not repeated. The lines are checked for form only; whoever
    opens the note verifies them.
    """
    _, existing = _parse_note(note, "signed note", "")
    present = {line.line for line in existing}
    added: list[str] = []
    for raw in lines:
        line = raw[:-1] if raw.endswith("\n") else raw
        if "\n" in line:
            raise NoteFormatError(f"signature line {line[:40]!r} contains a newline")
        _parse_signature_line(line, "signature line to add", "")
        if line not in present:
            present.add(line)
            added.append(line)
    if len(existing) + len(added) > MAX_SIGNATURES:
        raise NoteFormatError(
            f"a note with {len(existing) + len(added)} signature lines would have more than "
            f"the {MAX_SIGNATURES} we read"
        )
    return note + "".join(line + "\n" for line in added).encode()


# -- monitoring -------------------------------------------------------------------------------


def _describe(checkpoint: Checkpoint) -> str:
    return f"size {checkpoint.size} (root {checkpoint.root.hex()[:16]}…)"


def check_update(seen: Checkpoint | None, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Accept ``new`` after ``seen`` only if the log's tree grew append-only in between.

    What a monitor or witness does with every new checkpoint of a log, given the consistency
    proof from ``seen.size`` to ``new.size``: a smaller tree is a rollback
    (:class:`RollbackError`); a tree that does not extend the one seen, or a second root for
    the same size, is a split view (:class:`SplitViewError`). With nothing seen yet, ``new`` is
    accepted as it is (trust on first use). Verify both checkpoints' signatures first.
    """
    if seen is None:
        return
    if seen.origin != new.origin:
        raise CheckpointError(
            f"a checkpoint of the log {new.origin!r} cannot update the log {seen.origin!r}"
        )
    log = f"log {new.origin!r}"
    if new.size < seen.size:
        raise RollbackError(
            f"rollback: {log} presented a tree of {_describe(new)} after one of {_describe(seen)}",
            hint="a log only grows; keep the larger checkpoint and report the log",
        )
    if new.size == seen.size:
        if new.root != seen.root:
            raise SplitViewError(
                f"split view: {log} signed two different roots for size {new.size} "
                f"({seen.root.hex()[:16]}…, {new.root.hex()[:16]}…); the log rewrote its history",
                hint="keep both signed checkpoints as evidence and report the log",
            )
        if proof:
            raise ProofError(
                f"consistency proof between two checkpoints of {log} with the same size "
                f"{new.size} must be empty, has {len(proof)} hashes"
            )
        return
    try:
        verify_consistency(seen.size, new.size, seen.root, new.root, proof)
    except ProofError as error:
        raise SplitViewError(
            f"split view: the tree of {_describe(new)} of {log} does not extend the tree of "
            f"{_describe(seen)}; the log rewrote its history or the proof is forged "
            f"({error.message})",
            hint="keep both signed checkpoints and the proof as evidence and report the log",
        ) from error
