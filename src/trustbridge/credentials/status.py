"""Credential status as W3C Bitstring Status List v1.0: revocation and suspension bits.

An issuer keeps one :class:`BitstringStatusList` per purpose, gives each credential an index in
it (a :class:`StatusEntry` in the credential's ``credentialStatus``) and publishes the list as a
``BitstringStatusListCredential`` (:func:`status_list_payload`, signed elsewhere as ``vc+jwt``).
A verifier reads a verified list with :func:`read_status_list`, keeps it in a
:class:`StatusListCache` and asks :func:`check_status`, which returns nothing or raises.

Pure core: no HTTP and no signatures here; fetching and verifying come in as callables.
Only ``statusSize`` 1 is supported (the spec allows processors to support only that), so the
purposes are ``revocation`` and ``suspension``; anything else is refused.
"""

from __future__ import annotations

import enum
import functools
import gzip
import re
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from trustbridge.clock import ensure_utc
from trustbridge.credentials.errors import (
    CredentialError,
    ExpiredCredentialError,
    MalformedCredentialError,
    NotYetValidCredentialError,
    RevokedCredentialError,
    StatusUnavailableError,
    SuspendedCredentialError,
    WrongTypeError,
)
from trustbridge.errors import InputError
from trustbridge.trust._jws import JwsFormatError, b64url_decode, b64url_encode

__all__ = [
    "ENTRY_TYPE",
    "LIST_CREDENTIAL_TYPE",
    "LIST_TYPE",
    "MAX_LIST_BYTES",
    "MIN_LIST_BITS",
    "BitstringStatusList",
    "StatusEntry",
    "StatusListCache",
    "StatusListSnapshot",
    "StatusPurpose",
    "check_status",
    "entries_from_json",
    "read_status_list",
    "status_list_payload",
]

#: The minimum list length, 131,072 bits = 16 KiB (Validate Algorithm, minimumNumberOfEntries):
#: the herd a credential's index hides in.
MIN_LIST_BITS = 131_072
#: The most bytes a received list may decompress to (16 MiB = 134,217,728 entries).
MAX_LIST_BYTES = 16 * 1024 * 1024
#: ``type`` of a ``credentialStatus`` entry.
ENTRY_TYPE = "BitstringStatusListEntry"
#: ``type`` of the status list credential, next to ``VerifiableCredential``.
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
#: ``type`` of the status list credential's subject.
LIST_TYPE = "BitstringStatusList"

_VCDM_CONTEXT = "https://www.w3.org/ns/credentials/v2"
_DEFAULT_TTL = timedelta(minutes=5)  # credentialSubject.ttl: 300000 ms when absent
_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


class StatusPurpose(enum.StrEnum):
    """What a set bit means (``statusPurpose``)."""

    #: The credential is cancelled for good.
    REVOCATION = "revocation"
    #: The credential is not to be accepted for now; the bit may be cleared again.
    SUSPENSION = "suspension"


# -- the bitstring --------------------------------------------------------------------------


class BitstringStatusList:
    """A mutable bitstring of status bits; bit 0 is the most significant bit of the first byte."""

    __slots__ = ("_bits",)

    def __init__(self, data: bytes | bytearray) -> None:
        """A list over ``data`` (copied); at least :data:`MIN_LIST_BITS` bits."""
        if len(data) * 8 < MIN_LIST_BITS:
            raise ValueError(
                f"a status list needs at least {MIN_LIST_BITS} bits, not {len(data) * 8}"
            )
        self._bits = bytearray(data)

    @classmethod
    def new(cls, size: int = MIN_LIST_BITS) -> BitstringStatusList:
        """A list of ``size`` clear bits (a multiple of 8, at least :data:`MIN_LIST_BITS`)."""
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"the list size must be an int, not {type(size).__name__}")
        if size < MIN_LIST_BITS or size % 8:
            raise ValueError(
                f"a status list has a multiple of 8 bits, at least {MIN_LIST_BITS}; not {size}"
            )
        return cls(bytes(size // 8))

    @property
    def size(self) -> int:
        """The number of bits."""
        return len(self._bits) * 8

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"a status list index must be an int, not {type(index).__name__}")
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} is outside the status list of {self.size} bits")
        # Bitstring encoding: index 0 is the left-most bit, the MSB of the first byte
        return index // 8, 0x80 >> (index % 8)

    def get(self, index: int) -> bool:
        """Whether bit ``index`` is set."""
        byte, mask = self._locate(index)
        return bool(self._bits[byte] & mask)

    def set(self, index: int, value: bool) -> None:
        """Set bit ``index`` to ``value``."""
        byte, mask = self._locate(index)
        if value:
            self._bits[byte] |= mask
        else:
            self._bits[byte] &= ~mask & 0xFF

    def copy(self) -> BitstringStatusList:
        """An independent copy."""
        return BitstringStatusList(self._bits)

    def __bytes__(self) -> bytes:
        return bytes(self._bits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitstringStatusList):
            return NotImplemented
        return self._bits == other._bits

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        set_bits = sum(bin(byte).count("1") for byte in self._bits)
        return f"BitstringStatusList(size={self.size}, set={set_bits})"

    def encode(self) -> str:
        """``encodedList``: multibase ``u`` + unpadded base64url of the GZIP-compressed bits."""
        # Bitstring Generation Algorithm step 3: GZIP (RFC 1952), then base64url without
        # padding (RFC 4648 5); encodedList adds the multibase prefix "u". mtime 0 keeps the
        # output a function of the bits alone.
        return "u" + b64url_encode(gzip.compress(bytes(self._bits), mtime=0))

    @classmethod
    def decode(
        cls, encoded_list: str, *, max_bytes: int = MAX_LIST_BYTES, source: str = ""
    ) -> BitstringStatusList:
        """Read an ``encodedList``; :class:`MalformedCredentialError` for anything else.

        The list is decompressed incrementally and refused as soon as it passes ``max_bytes``
        (the GZIP trailer's size is not trusted), so a GZIP bomb costs at most ``max_bytes``.
        """
        if not isinstance(encoded_list, str):
            raise MalformedCredentialError(
                f"encodedList is a {type(encoded_list).__name__}, not a string", source=source
            )
        if not encoded_list.startswith("u"):
            raise MalformedCredentialError(
                f"encodedList starts with {encoded_list[:1]!r}, not the multibase prefix 'u' "
                "(base64url without padding)",
                source=source,
            )
        # Bitstring Expansion Algorithm step 2: base64url-decode, then GZIP-decompress
        try:
            compressed = b64url_decode(encoded_list[1:])
        except JwsFormatError as exc:
            raise MalformedCredentialError(
                f"encodedList after its 'u' prefix is {exc} (RFC 4648 5, no padding)",
                source=source,
            ) from exc
        data = _gunzip(compressed, max_bytes=max_bytes, source=source)
        # Validate Algorithm step 9: STATUS_LIST_LENGTH_ERROR
        if len(data) * 8 < MIN_LIST_BITS:
            raise MalformedCredentialError(
                f"the status list has {len(data) * 8} bits, fewer than the {MIN_LIST_BITS} "
                "the spec requires for herd privacy (STATUS_LIST_LENGTH_ERROR)",
                source=source,
            )
        return cls(data)


def _gunzip(data: bytes, *, max_bytes: int, source: str) -> bytearray:
    """Decompress one or more GZIP members (RFC 1952 2.2), never beyond ``max_bytes``."""
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, not {max_bytes}")
    out = bytearray()
    rest = data
    first = True
    while True:
        if not rest.startswith(_GZIP_MAGIC):
            what = "is not GZIP data" if first else "has trailing bytes after its GZIP data"
            raise MalformedCredentialError(
                f"encodedList {what} (RFC 1952: no ID1 ID2 magic)", source=source
            )
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # the GZIP wrapper only
        pending = rest
        try:
            while not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                out += chunk
                if len(out) > max_bytes:
                    raise MalformedCredentialError(
                        f"encodedList decompresses to more than {max_bytes} bytes; refused",
                        source=source,
                    )
                progress = bool(chunk) or len(inflater.unconsumed_tail) < len(pending)
                pending = inflater.unconsumed_tail
                if not progress:
                    raise MalformedCredentialError(
                        "encodedList is truncated GZIP data", source=source
                    )
        except zlib.error as exc:
            raise MalformedCredentialError(
                f"encodedList is not valid GZIP data ({exc})", source=source
            ) from exc
        rest, first = inflater.unused_data, False
        if not rest:
            return out


_PURPOSES = {p.value: p for p in StatusPurpose}

# -- credentialStatus entries ---------------------------------------------------------------


def _url_problem(url: object) -> str | None:
    """Why ``url`` is not an absolute http(s) URL without a fragment, or None."""
    if not isinstance(url, str):
        return f"is a {type(url).__name__}, not a string"
    return _str_url_problem(url)


@functools.lru_cache(maxsize=1024)
def _str_url_problem(url: str) -> str | None:
    # Cached: a verifier sees the same few list URLs in every credential of an issuer.
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        return f"{url!r} contains spaces, control or non-ASCII characters"
    if "#" in url:
        return f"{url!r} has a fragment"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    return None


@dataclass(frozen=True)
class StatusEntry:
    """One ``BitstringStatusListEntry``: the bit at ``index`` of the list at ``list_url``."""

    list_url: str
    index: int
    purpose: StatusPurpose

    def __post_init__(self) -> None:
        problem = _url_problem(self.list_url)
        if problem:
            raise ValueError(f"statusListCredential {problem}")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise ValueError(f"statusListIndex {self.index!r} is not a non-negative integer")
        if not isinstance(self.purpose, StatusPurpose):
            raise ValueError(f"statusPurpose {self.purpose!r} is not a StatusPurpose")

    @property
    def id(self) -> str:
        """The entry's ``id``: the list URL with the index as fragment."""
        return f"{self.list_url}#{self.index}"

    def to_json(self) -> dict[str, str]:
        """The entry as it appears in ``credentialStatus``."""
        return {
            "id": self.id,
            "type": ENTRY_TYPE,
            "statusPurpose": str(self.purpose),
            "statusListIndex": str(self.index),
            "statusListCredential": self.list_url,
        }

    @classmethod
    def from_json(cls, obj: object, *, source: str = "") -> StatusEntry:
        """Read one ``credentialStatus`` entry; :class:`MalformedCredentialError` if invalid."""
        if not isinstance(obj, dict) and not isinstance(obj, Mapping):  # dict: no ABC check
            raise _refuse_entry(source, f"an entry is a {type(obj).__name__}, not a JSON object")
        # BitstringStatusListEntry: type MUST be BitstringStatusListEntry
        kind = obj.get("type")
        if not (type(kind) is str and kind == ENTRY_TYPE) and not _has_type(kind, ENTRY_TYPE):
            raise _refuse_entry(source, f"type {obj.get('type')!r} is not {ENTRY_TYPE!r}")
        purpose = obj.get("statusPurpose")
        if not isinstance(purpose, str):
            raise _refuse_entry(source, f"statusPurpose {purpose!r} is not a string")
        member = _PURPOSES.get(purpose)
        if member is None:
            raise _refuse_entry(
                source,
                f"statusPurpose {purpose!r} is not supported (only "
                f"{', '.join(StatusPurpose)}); the credential's status cannot be checked",
            )
        # statusListIndex: a non-negative integer as a base-10 string
        index = obj.get("statusListIndex")
        if not isinstance(index, str) or not _is_index(index):
            raise _refuse_entry(
                source,
                f"statusListIndex {index!r} is not a non-negative integer as a decimal string "
                "(no sign, no leading zeros, at most 18 digits)",
            )
        url = obj.get("statusListCredential")
        problem = _str_url_problem(url) if type(url) is str else _url_problem(url)
        if problem or not isinstance(url, str):
            raise _refuse_entry(source, f"statusListCredential {problem}")
        # statusSize: processed as 1 when absent; processors may support only 1
        size = obj.get("statusSize", 1)
        if isinstance(size, bool) or size != 1:
            raise _refuse_entry(source, f"statusSize {size!r} is not supported (only 1)")
        # The id is the list URL and the index (index is canonical decimal: as str(int) gives it)
        if "id" in obj and obj["id"] != f"{url}#{index}":
            raise _refuse_entry(
                source, f"id {obj['id']!r} is not {f'{url}#{index}'!r} (list URL and index)"
            )
        # Checked above as __post_init__ would check it: built without checking again (the
        # fields set at once, as the frozen dataclass's own __init__ sets them one by one).
        entry = _new_object(cls)
        _set_attribute(entry, "__dict__", {"list_url": url, "index": int(index), "purpose": member})
        return entry


_new_object = object.__new__
_set_attribute = object.__setattr__


def _is_index(text: str) -> bool:
    """Whether ``text`` is 1 to 18 ASCII digits without a leading zero, "0" aside (as the
    regular expression ``(?:0|[1-9][0-9]{0,17})`` fully matches, in a third of its time)."""
    return (
        text.isascii() and text.isdigit() and len(text) <= 18 and (text[0] != "0" or len(text) == 1)
    )


def _refuse_entry(source: str, problem: str) -> MalformedCredentialError:
    return MalformedCredentialError(f"credentialStatus: {problem}", source=source)


def entries_from_json(value: object, *, source: str = "") -> tuple[StatusEntry, ...]:
    """Read ``credentialStatus``: one entry object or a non-empty array, one per purpose."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedCredentialError("credentialStatus is an empty array", source=source)
    read = StatusEntry.from_json
    entries = tuple([read(item, source=source) for item in items])
    if len(entries) > 1 and len({entry.purpose for entry in entries}) != len(entries):
        purposes = [entry.purpose for entry in entries]
        for purpose in StatusPurpose:
            if purposes.count(purpose) > 1:
                raise MalformedCredentialError(
                    f"credentialStatus has more than one {purpose} entry", source=source
                )
    return entries


def _has_type(value: object, wanted: str) -> bool:
    """Whether a JSON-LD ``type`` (a string or an array of strings) includes ``wanted``."""
    if isinstance(value, str):
        return value == wanted
    return (
        isinstance(value, list) and all(isinstance(item, str) for item in value) and wanted in value
    )


# -- the status list credential -------------------------------------------------------------


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: datetime) -> datetime:
    return ensure_utc(value).replace(microsecond=0)


def status_list_payload(
    *,
    url: str,
    issuer: str,
    purpose: StatusPurpose,
    bits: BitstringStatusList,
    valid_from: datetime,
    valid_until: datetime,
    ttl: timedelta | None,
) -> dict[str, Any]:
    """The ``BitstringStatusListCredential`` as the JWT payload of a ``vc+jwt``.

    The VCDM 2.0 document (``validFrom``/``validUntil`` to the second) plus the JWT claims
    ``iss``, ``jti`` (the list URL), ``iat`` = ``nbf`` (valid from) and ``exp`` (valid until).
    """
    problem = _url_problem(url)
    if problem:
        raise InputError(f"status list URL {problem}")
    if not isinstance(issuer, str) or not issuer:
        raise InputError(f"status list {url}: the issuer must be a non-empty string")
    purpose = StatusPurpose(purpose)
    start, end = _seconds(valid_from), _seconds(valid_until)
    if end <= start:
        raise InputError(
            f"status list {url}: validUntil {_rfc3339(end)} must come after "
            f"validFrom {_rfc3339(start)}"
        )
    subject: dict[str, Any] = {
        "id": f"{url}#list",
        "type": LIST_TYPE,
        "statusPurpose": str(purpose),
        "encodedList": bits.encode(),
    }
    if ttl is not None:
        # credentialSubject.ttl: time to live in milliseconds
        milliseconds = ttl // timedelta(milliseconds=1)
        if milliseconds < 1:
            raise InputError(f"status list {url}: ttl {ttl} must be at least 1 ms")
        subject["ttl"] = milliseconds
    return {
        "@context": [_VCDM_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": _rfc3339(start),
        "validUntil": _rfc3339(end),
        "credentialSubject": subject,
        "iss": issuer,
        "jti": url,
        "iat": int(start.timestamp()),
        "nbf": int(start.timestamp()),
        "exp": int(end.timestamp()),
    }


@dataclass(frozen=True)
class StatusListSnapshot:
    """A verified status list as read at one time: the bits and how long they may be used."""

    url: str
    issuer: str
    purpose: StatusPurpose
    bits: BitstringStatusList
    valid_from: datetime
    valid_until: datetime
    #: ``credentialSubject.ttl``, when the list gives one.
    ttl: timedelta | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "valid_from", ensure_utc(self.valid_from))
        object.__setattr__(self, "valid_until", ensure_utc(self.valid_until))
        if self.valid_until < self.valid_from:
            raise ValueError(f"status list {self.url}: valid until before valid from")
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise ValueError(f"status list {self.url}: ttl {self.ttl} is not positive")

    def status_of(self, entry: StatusEntry) -> bool:
        """Whether ``entry``'s bit is set in this list."""
        if entry.list_url != self.url or entry.purpose != self.purpose:
            raise MalformedCredentialError(
                f"the entry for the {entry.purpose} list {entry.list_url} is not in the "
                f"{self.purpose} list {self.url}"
            )
        # Validate Algorithm step 10: an index outside the bitstring is a RANGE_ERROR
        index, bits = entry.index, self.bits._bits
        if index >= len(bits) * 8:
            raise MalformedCredentialError(
                f"statusListIndex {entry.index} is beyond the {self.purpose} list of "
                f"{self.bits.size} entries (RANGE_ERROR)",
                source=self.url,
            )
        if type(index) is int and index >= 0:  # as BitstringStatusList.get reads it
            return bool(bits[index >> 3] & (0x80 >> (index & 7)))
        return self.bits.get(index)


def _parse_time(value: object, what: str, source: str) -> datetime:
    """An XML Schema dateTimeStamp / RFC 3339 date-time (a time zone is required)."""
    if isinstance(value, str) and _TIME.fullmatch(value):
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        try:
            return ensure_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise MalformedCredentialError(
        f"{what} {value!r} is not a date-time with a time zone (RFC 3339)", source=source
    )


def _numeric_date(value: object, claim: str, source: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedCredentialError(f"{claim} {value!r} is not a NumericDate", source=source)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedCredentialError(
            f"{claim} {value!r} is not a representable time", source=source
        ) from exc


def read_status_list(
    payload: Mapping[str, Any],
    *,
    url: str,
    purpose: StatusPurpose,
    at: datetime,
    skew: timedelta = timedelta(minutes=1),
) -> StatusListSnapshot:
    """Read a verified ``BitstringStatusListCredential`` payload fetched from ``url``.

    Checks the data model, that the credential is the list at ``url`` for ``purpose``, and that
    it is valid at ``at`` (within ``skew``; the window is the intersection of
    ``validFrom``/``validUntil`` and ``nbf``/``exp`` where those are present); decodes the list.
    The signature and the issuer's authority are the caller's to check.
    """
    at = ensure_utc(at)
    purpose = StatusPurpose(purpose)
    if not isinstance(payload, Mapping):
        raise MalformedCredentialError(
            "the status list credential is not a JSON object", source=url
        )
    issuer = _read_envelope(payload, url)
    subject = payload.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise MalformedCredentialError("credentialSubject is not one JSON object", source=url)
    ttl = _read_subject(subject, url, purpose)
    valid_from, valid_until = _validity(payload, url)
    if at + skew < valid_from:
        raise NotYetValidCredentialError(
            f"the {purpose} status list is valid from {_rfc3339(valid_from)}, after {_rfc3339(at)}",
            source=url,
        )
    if at - skew > valid_until:
        raise ExpiredCredentialError(
            f"the {purpose} status list expired at {_rfc3339(valid_until)}, before {_rfc3339(at)}",
            source=url,
            hint="the issuer publishes a fresh list before the old one expires; fetch it again",
        )
    encoded = subject.get("encodedList")
    if not isinstance(encoded, str):
        raise MalformedCredentialError(
            f"credentialSubject.encodedList is missing or a {type(encoded).__name__}, not a string",
            source=url,
        )
    return StatusListSnapshot(
        url=url,
        issuer=issuer,
        purpose=purpose,
        bits=BitstringStatusList.decode(encoded, source=url),
        valid_from=valid_from,
        valid_until=valid_until,
        ttl=ttl,
    )


def _read_envelope(payload: Mapping[str, Any], url: str) -> str:
    """Check @context, type, id and the JWT claims naming the list; return the issuer."""
    # VCDM 2.0 4.3: the first @context is the base context
    context = payload.get("@context")
    if not isinstance(context, list) or context[:1] != [_VCDM_CONTEXT]:
        raise WrongTypeError(
            f"@context {context!r} does not start with {_VCDM_CONTEXT!r}", source=url
        )
    types = payload.get("type")
    if not (_has_type(types, "VerifiableCredential") and _has_type(types, LIST_CREDENTIAL_TYPE)):
        raise WrongTypeError(
            f"type {types!r} is not VerifiableCredential and {LIST_CREDENTIAL_TYPE}", source=url
        )
    # BitstringStatusListCredential id: the entry's statusListCredential; another is refused,
    # so that a validly signed list cannot stand in for the one the credential names
    if payload.get("id") != url:
        raise MalformedCredentialError(
            f"the status list credential's id is {payload.get('id')!r}, not the URL it was "
            "fetched from",
            source=url,
        )
    if "jti" in payload and payload["jti"] != url:
        raise MalformedCredentialError(f"jti {payload['jti']!r} is not the list URL", source=url)
    # VCDM 2.0 4.7: issuer is a URL or an object with an id
    issuer = payload.get("issuer")
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise MalformedCredentialError(f"issuer {issuer!r} is not an identifier", source=url)
    if "iss" in payload and payload["iss"] != issuer:
        raise MalformedCredentialError(
            f"iss {payload['iss']!r} is not the issuer {issuer!r}", source=url
        )
    return issuer


def _read_subject(subject: Mapping[str, Any], url: str, purpose: StatusPurpose) -> timedelta | None:
    """Check the BitstringStatusList subject for ``purpose``; return its ttl."""
    if not _has_type(subject.get("type"), LIST_TYPE):
        raise WrongTypeError(
            f"credentialSubject.type {subject.get('type')!r} is not {LIST_TYPE!r}", source=url
        )
    # credentialSubject.statusPurpose: one or more strings
    purposes = subject.get("statusPurpose")
    if not isinstance(purposes, str) and not (
        isinstance(purposes, list) and purposes and all(isinstance(p, str) for p in purposes)
    ):
        raise MalformedCredentialError(
            f"credentialSubject.statusPurpose {purposes!r} is not one or more strings", source=url
        )
    # Validate Algorithm step 5: the entry's purpose is one of the list's
    if not _has_type(purposes, str(purpose)):
        raise WrongTypeError(
            f"the list is for {purposes!r}, not {str(purpose)!r} (STATUS_VERIFICATION_ERROR)",
            source=url,
        )
    size = subject.get("statusSize", 1)
    if isinstance(size, bool) or size != 1:
        raise MalformedCredentialError(
            f"credentialSubject.statusSize {size!r} is not supported (only 1)", source=url
        )
    if "ttl" not in subject:
        return None
    # credentialSubject.ttl: time to live in milliseconds
    milliseconds = subject["ttl"]
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or milliseconds < 1:
        raise MalformedCredentialError(
            f"credentialSubject.ttl {milliseconds!r} is not a positive number of milliseconds",
            source=url,
        )
    try:
        return timedelta(milliseconds=milliseconds)
    except OverflowError as exc:
        raise MalformedCredentialError(
            f"credentialSubject.ttl {milliseconds!r} is too large", source=url
        ) from exc


def _validity(payload: Mapping[str, Any], url: str) -> tuple[datetime, datetime]:
    """The validity window: validFrom..validUntil, narrowed by nbf..exp where present."""
    # VCDM 2.0 4.9: both ends are optional in general, required of a status list (fail closed)
    if "validFrom" not in payload or "validUntil" not in payload:
        raise MalformedCredentialError(
            "a status list credential needs validFrom and validUntil", source=url
        )
    valid_from = _parse_time(payload["validFrom"], "validFrom", url)
    valid_until = _parse_time(payload["validUntil"], "validUntil", url)
    if "nbf" in payload:
        valid_from = max(valid_from, _numeric_date(payload["nbf"], "nbf", url))
    if "exp" in payload:
        valid_until = min(valid_until, _numeric_date(payload["exp"], "exp", url))
    if valid_until < valid_from:
        raise MalformedCredentialError(
            f"the list is valid until {_rfc3339(valid_until)}, before it is valid from "
            f"{_rfc3339(valid_from)}",
            source=url,
        )
    return valid_from, valid_until


# -- the verifier's cache and check ---------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    snapshot: StatusListSnapshot
    fetched_at: datetime
    expires_at: datetime


def _describe(exc: BaseException, url: str) -> str:
    if isinstance(exc, CredentialError):
        return exc.message.removeprefix(f"{url}: ")
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StatusListCache:
    """Verified status lists by (URL, purpose), each kept until it expires or its TTL passes.

    ``fetch(url)`` returns the bytes published at a URL (raising on any failure);
    ``read(data, url, purpose, at)`` verifies them (signature, issuer) and returns the snapshot,
    typically through :func:`read_status_list`. Failures fail closed as
    :class:`StatusUnavailableError`; an expired entry is never used. Thread-safe: concurrent
    callers for one list wait for a single fetch.
    """

    def __init__(
        self,
        fetch: Callable[[str], bytes],
        read: Callable[[bytes, str, StatusPurpose, datetime], StatusListSnapshot],
        *,
        default_ttl: timedelta = _DEFAULT_TTL,
    ) -> None:
        if default_ttl <= timedelta(0):
            raise ValueError(f"default_ttl {default_ttl} is not positive")
        self._fetch = fetch
        self._read = read
        self._default_ttl = default_ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, StatusPurpose], _Cached] = {}
        self._loading: dict[tuple[str, StatusPurpose], threading.Lock] = {}

    def _cached(self, key: tuple[str, StatusPurpose], at: datetime) -> StatusListSnapshot | None:
        """The cached snapshot usable at ``at``; drops it once expired. Call under the lock."""
        cached = self._entries.get(key)
        if cached is None:
            return None
        if at >= cached.expires_at:
            del self._entries[key]
            return None
        return cached.snapshot if cached.fetched_at <= at else None

    def get(self, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        """The ``purpose`` list at ``url`` as usable at ``at``, fetched and read when needed."""
        if at.tzinfo is not UTC:
            at = ensure_utc(at)
        if type(purpose) is not StatusPurpose:
            purpose = StatusPurpose(purpose)
        key = (url, purpose)
        # A list in use, read without the lock (one dict look-up of an immutable entry, which
        # only ever replaces the entry as a whole); anything else under it, as _cached says.
        cached = self._entries.get(key)
        if cached is not None and cached.fetched_at <= at < cached.expires_at:
            return cached.snapshot
        with self._lock:
            snapshot = self._cached(key, at)
            if snapshot is not None:
                return snapshot
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                snapshot = self._cached(key, at)
            if snapshot is not None:
                return snapshot
            snapshot = self._load(url, purpose, at)
            # credentialSubject.ttl: no use of a list cached for longer than its ttl
            expires_at = min(snapshot.valid_until, at + (snapshot.ttl or self._default_ttl))
            with self._lock:
                self._entries[key] = _Cached(snapshot, at, expires_at)
            return snapshot

    def _load(self, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        hint = "the credential's status cannot be checked until its status list can be read"
        # Validate Algorithm step 4: a failed dereference is a STATUS_RETRIEVAL_ERROR
        try:
            data = self._fetch(url)
        except Exception as exc:
            raise StatusUnavailableError(
                f"cannot fetch the {purpose} status list: {_describe(exc, url)}",
                source=url,
                hint=hint,
            ) from exc
        try:
            snapshot = self._read(data, url, purpose, at)
        except StatusUnavailableError:
            raise
        except Exception as exc:
            raise StatusUnavailableError(
                f"the {purpose} status list is refused: {_describe(exc, url)}",
                source=url,
                hint=hint,
            ) from exc
        if snapshot.url != url or snapshot.purpose != purpose:
            raise StatusUnavailableError(
                f"reading the {purpose} status list gave the {snapshot.purpose} list "
                f"{snapshot.url}",
                source=url,
            )
        return snapshot

    def invalidate(self, url: str | None = None) -> None:
        """Forget the lists at ``url`` (every purpose), or all lists."""
        with self._lock:
            if url is None:
                self._entries.clear()
            else:
                for key in [key for key in self._entries if key[0] == url]:
                    del self._entries[key]


def check_status(
    entries: Sequence[StatusEntry],
    cache: StatusListCache,
    at: datetime,
    *,
    issuer: str | None = None,
) -> None:
    """Return if no entry's bit is set at ``at``; raise otherwise.

    :class:`RevokedCredentialError` or :class:`SuspendedCredentialError` for a set bit
    (revocation is checked first), :class:`StatusUnavailableError` where a list cannot be read
    or there is no entry at all, :class:`MalformedCredentialError` for a purpose other than
    revocation or suspension or an index beyond its list.
    """
    if not entries:
        raise StatusUnavailableError(
            "the credential names no status list, so its status cannot be checked"
        )
    revocation_later = False  # a revocation entry after another one
    for position, entry in enumerate(entries):
        if entry.purpose not in (StatusPurpose.REVOCATION, StatusPurpose.SUSPENSION):
            raise MalformedCredentialError(
                f"status purpose {entry.purpose!r} cannot be checked (only revocation and "
                "suspension)",
                source=entry.list_url,
            )
        if position and entry.purpose is StatusPurpose.REVOCATION:
            revocation_later = True
    # Revocation first (a stable partition: the order sorted() by that key would give)
    ordered = entries
    if revocation_later:
        ordered = [e for e in entries if e.purpose is StatusPurpose.REVOCATION]
        ordered += [e for e in entries if e.purpose is not StatusPurpose.REVOCATION]
    for entry in ordered:
        snapshot = cache.get(entry.list_url, entry.purpose, at)
        # The list whose bits are read is the one whose issuer is compared.
        if issuer is not None and snapshot.issuer != issuer:
            raise StatusUnavailableError(
                f"status list {entry.list_url} is issued by {snapshot.issuer}, not by {issuer}"
            )
        if not snapshot.status_of(entry):
            continue
        if entry.purpose is StatusPurpose.REVOCATION:
            raise RevokedCredentialError(
                f"the credential is revoked: index {entry.index} of the revocation status "
                f"list {entry.list_url} is set"
            )
        raise SuspendedCredentialError(
            f"the credential is suspended: index {entry.index} of the suspension status "
            f"list {entry.list_url} is set",
            hint="a suspension can be lifted by the issuer; check again later",
        )
