"""W3C Bitstring Status List: the bitstring, entries, the list credential, the cache, the check."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import itertools
import json
import re
import threading
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from trustbridge.credentials.status import (
    MAX_LIST_BYTES,
    MIN_LIST_BITS,
    BitstringStatusList,
    StatusEntry,
    StatusListCache,
    StatusListSnapshot,
    StatusPurpose,
    _is_index,
    check_status,
    entries_from_json,
    read_status_list,
    status_list_payload,
)
from trustbridge.errors import InputError
from trustbridge.trust._jws import b64url_decode, b64url_encode, parse_json

REVOCATION = StatusPurpose.REVOCATION
SUSPENSION = StatusPurpose.SUSPENSION
URL = "https://tsp.example/status/1"
SUSPENSION_URL = "https://tsp.example/status/2"
ISSUER = "urn:trustbridge:org:VATDE-123456789"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LAST = MIN_LIST_BITS - 1
#: The encodedList of the spec's example BitstringStatusListCredential: 16 KiB of clear bits.
SPEC_EXAMPLE = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def encoded(data: bytes) -> str:
    return "u" + b64url_encode(data)


def expand(encoded_list: str) -> bytes:
    """The spec's Bitstring Expansion, independently of the code under test."""
    return gzip.decompress(b64url_decode(encoded_list[1:]))


def payload(
    bits: BitstringStatusList | None = None,
    *,
    url: str = URL,
    purpose: StatusPurpose = REVOCATION,
    valid_from: datetime = T0,
    valid_until: datetime = T0 + timedelta(days=1),
    ttl: timedelta | None = timedelta(minutes=10),
) -> dict[str, Any]:
    return status_list_payload(
        url=url,
        issuer=ISSUER,
        purpose=purpose,
        bits=bits if bits is not None else BitstringStatusList.new(),
        valid_from=valid_from,
        valid_until=valid_until,
        ttl=ttl,
    )


# -- the bitstring --------------------------------------------------------------------------


def test_new_list_has_the_minimum_size_and_is_clear() -> None:
    bits = BitstringStatusList.new()
    assert bits.size == MIN_LIST_BITS == 131_072
    assert not bits.get(0)
    assert not bits.get(LAST)
    assert expand(bits.encode()) == bytes(16 * 1024)


@pytest.mark.parametrize("size", [MIN_LIST_BITS - 8, MIN_LIST_BITS + 1, 0, -8])
def test_new_list_refuses_sizes_below_the_minimum_or_not_whole_bytes(size: int) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_LIST_BITS}; not {size}"):
        BitstringStatusList.new(size)


def test_bit_zero_is_the_most_significant_bit_of_the_first_byte() -> None:
    bits = BitstringStatusList.new()
    bits.set(0, True)
    data = expand(bits.encode())
    assert data[0] == 0x80
    assert data[1:] == bytes(len(data) - 1)

    bits.set(0, False)
    bits.set(9, True)  # second byte, second bit from the left
    bits.set(LAST, True)  # the right-most bit
    data = expand(bits.encode())
    assert data[:2] == b"\x00\x40"
    assert data[-1] == 0x01


def test_round_trip_keeps_first_last_and_middle_bits() -> None:
    bits = BitstringStatusList.new(2 * MIN_LIST_BITS)
    for index in (0, 7, 8, 94_567, 2 * MIN_LIST_BITS - 1):
        bits.set(index, True)
    text = bits.encode()
    assert text.startswith("u")
    assert "=" not in text
    assert text == bits.encode()  # deterministic: no timestamp in the GZIP header

    again = BitstringStatusList.decode(text)
    assert again == bits
    assert again.size == 2 * MIN_LIST_BITS
    assert [i for i in (0, 1, 6, 7, 8, 9, 94_567, 2 * MIN_LIST_BITS - 1) if again.get(i)] == [
        0,
        7,
        8,
        94_567,
        2 * MIN_LIST_BITS - 1,
    ]


def test_set_clears_a_bit_again_without_touching_its_neighbours() -> None:
    bits = BitstringStatusList.new()
    for index in (15, 16, 17):
        bits.set(index, True)
    bits.set(16, False)
    assert (bits.get(15), bits.get(16), bits.get(17)) == (True, False, True)


def test_the_spec_example_list_decodes_to_16_kib_of_clear_bits() -> None:
    bits = BitstringStatusList.decode(SPEC_EXAMPLE)
    assert bits == BitstringStatusList.new()


@pytest.mark.parametrize("index", [-1, MIN_LIST_BITS, MIN_LIST_BITS + 100])
def test_indexes_outside_the_list_are_refused(index: int) -> None:
    bits = BitstringStatusList.new()
    with pytest.raises(IndexError, match=f"index {index} is outside the status list"):
        bits.get(index)
    with pytest.raises(IndexError, match=f"index {index} is outside"):
        bits.set(index, True)


def test_copy_is_independent() -> None:
    bits = BitstringStatusList.new()
    other = bits.copy()
    other.set(3, True)
    assert not bits.get(3)
    assert other != bits


def _gzip_members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(part, mtime=0) for part in parts)


def test_decode_accepts_a_multi_member_gzip() -> None:
    half = bytes(MIN_LIST_BITS // 16)
    bits = BitstringStatusList.decode(encoded(_gzip_members(half, b"\x01" + half[1:])))
    assert bits.size == MIN_LIST_BITS
    assert bits.get(MIN_LIST_BITS // 2 + 7)
    assert not bits.get(MIN_LIST_BITS // 2 + 6)


_FULL = gzip.compress(bytes(MIN_LIST_BITS // 8), mtime=0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with '', not the multibase prefix 'u'"),
        ("z" + encoded(_FULL)[1:], "starts with 'z', not the multibase prefix 'u'"),
        (encoded(_FULL)[1:], "not the multibase prefix 'u'"),
        ("u", r"after its 'u' prefix is not base64url"),
        ("u!!!!", r"after its 'u' prefix is not base64url"),
        (encoded(_FULL) + "==", r"not base64url"),
        ("u" + b64url_encode(_FULL).replace("-", "+"), "not base64url"),
        (encoded(b"this is no gzip stream"), "is not GZIP data"),
        (encoded(zlib.compress(bytes(MIN_LIST_BITS // 8))), "is not GZIP data"),
        (encoded(_FULL[:-6]), "truncated GZIP data"),
        (encoded(_FULL[:10] + b"\xff" * 20), "is not valid GZIP data"),
        (encoded(_FULL[:-1] + bytes([_FULL[-1] ^ 1])), "is not valid GZIP data"),
        (encoded(_FULL + b"junk"), "trailing bytes after its GZIP data"),
        (
            encoded(gzip.compress(bytes(MIN_LIST_BITS // 8 - 1))),
            f"has {MIN_LIST_BITS - 8} bits, fewer than the {MIN_LIST_BITS}",
        ),
        (encoded(gzip.compress(b"")), f"has 0 bits, fewer than the {MIN_LIST_BITS}"),
    ],
    ids=[
        "empty",
        "base58-prefix",
        "no-prefix",
        "prefix-only",
        "not-base64",
        "padded",
        "standard-base64",
        "not-gzip",
        "zlib-not-gzip",
        "truncated",
        "corrupt-deflate",
        "bad-trailer",
        "trailing-junk",
        "one-byte-short",
        "empty-list",
    ],
)
def test_decode_refuses_what_is_not_an_encoded_list(text: str, message: str) -> None:
    with pytest.raises(MalformedCredentialError, match=message):
        BitstringStatusList.decode(text, source=URL)


def test_decode_refuses_a_non_string() -> None:
    with pytest.raises(MalformedCredentialError, match="encodedList is a bytes, not a string"):
        BitstringStatusList.decode(b"uH4sI")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """100 MiB of zeros, GZIP-compressed to about 100 KB."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    body = b"".join(deflate.compress(chunk) for _ in range(100)) + deflate.flush()
    assert len(body) < 200_000
    return body


def test_a_gzip_bomb_is_refused_without_inflating_it(gzip_bomb: bytes) -> None:
    text = encoded(gzip_bomb)
    tracemalloc.start()
    try:
        with pytest.raises(
            MalformedCredentialError, match=f"decompresses to more than {MAX_LIST_BYTES} bytes"
        ):
            BitstringStatusList.decode(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_LIST_BYTES + 4 * 1024 * 1024  # not the 100 MiB the bomb expands to


def test_a_gzip_bomb_with_a_lying_size_trailer_is_refused(gzip_bomb: bytes) -> None:
    # RFC 1952 2.3.1: ISIZE, the last four bytes, claims a 16 KiB list; it is not trusted
    lying = gzip_bomb[:-4] + (MIN_LIST_BITS // 8).to_bytes(4, "little")
    with pytest.raises(MalformedCredentialError, match="decompresses to more than 1000000 bytes"):
        BitstringStatusList.decode(encoded(lying), max_bytes=1_000_000)


def test_decode_refuses_a_list_above_the_callers_limit() -> None:
    text = BitstringStatusList.new(2 * MIN_LIST_BITS).encode()
    with pytest.raises(MalformedCredentialError, match="more than 16384 bytes"):
        BitstringStatusList.decode(text, max_bytes=MIN_LIST_BITS // 8)
    assert BitstringStatusList.decode(text, max_bytes=MIN_LIST_BITS // 4).size == 2 * MIN_LIST_BITS


# -- credentialStatus entries ---------------------------------------------------------------


def test_entry_json_has_every_member() -> None:
    entry = StatusEntry(URL, 94_567, REVOCATION)
    assert entry.to_json() == {
        "id": f"{URL}#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": URL,
    }
    assert StatusEntry.from_json(entry.to_json(), source="cred.jwt") == entry


def test_entry_without_id_is_read() -> None:
    obj = StatusEntry(URL, 0, SUSPENSION).to_json()
    del obj["id"]
    obj["statusSize"] = 1  # type: ignore[assignment]
    obj["statusMessage"] = [{"status": "0x0", "message": "unset"}]  # type: ignore[assignment]
    assert StatusEntry.from_json(obj) == StatusEntry(URL, 0, SUSPENSION)


def test_entry_read_is_the_entry_built() -> None:
    # from_json builds the entry without checking again what it checked: the same value object.
    built = StatusEntry(URL, 7, SUSPENSION)
    read = StatusEntry.from_json({**built.to_json(), "type": ["BitstringStatusListEntry"]})
    assert (read, hash(read), repr(read)) == (built, hash(built), repr(built))
    assert type(read.index) is int and read.purpose is SUSPENSION
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.index = 8  # type: ignore[misc]


def _entry(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = dict(StatusEntry(URL, 42, REVOCATION).to_json())
    for key, value in changes.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("not an object", "an entry is a str, not a JSON object"),
        (_entry(type="StatusList2021Entry"), "type 'StatusList2021Entry' is not"),
        (_entry(type=None), "type None is not 'BitstringStatusListEntry'"),
        (_entry(statusPurpose="message"), "statusPurpose 'message' is not supported"),
        (_entry(statusPurpose="refresh"), "statusPurpose 'refresh' is not supported"),
        (_entry(statusPurpose=["revocation"]), r"statusPurpose \['revocation'\] is not a string"),
        (_entry(statusListIndex=42), "statusListIndex 42 is not a non-negative integer"),
        (_entry(statusListIndex="-1"), "statusListIndex '-1' is not"),
        (_entry(statusListIndex="+1"), "statusListIndex '\\+1' is not"),
        (_entry(statusListIndex="042"), "statusListIndex '042' is not"),
        (_entry(statusListIndex="4.2"), "statusListIndex '4.2' is not"),
        (_entry(statusListIndex=""), "statusListIndex '' is not"),
        (_entry(statusListIndex="\u0664\u0662"), "statusListIndex '\u0664\u0662' is not"),
        (_entry(statusListIndex="1" * 19), "at most 18 digits"),
        (_entry(statusListIndex=None), "statusListIndex None is not"),
        (_entry(statusListCredential=None), "statusListCredential is a NoneType, not a string"),
        (_entry(statusListCredential="ftp://tsp.example/s"), "is not an http\\(s\\) URL"),
        (_entry(statusListCredential="/status/1"), "is not an http\\(s\\) URL"),
        (_entry(statusListCredential="https:///status"), "is not an http\\(s\\) URL"),
        (_entry(statusListCredential=URL + "#x"), "has a fragment"),
        (_entry(statusListCredential="https://tsp.example/a b"), "contains spaces"),
        (_entry(statusListCredential="https://tsp.example:99999/"), "is not a URL"),
        (_entry(id=f"{URL}#43"), f"id '{URL}#43' is not '{URL}#42'"),
        (_entry(id=URL), f"id '{URL}' is not"),
        (_entry(statusSize=2), "statusSize 2 is not supported"),
        (_entry(statusSize=True), "statusSize True is not supported"),
    ],
)
def test_entry_refuses_what_the_data_model_does_not_allow(obj: object, message: str) -> None:
    with pytest.raises(MalformedCredentialError, match=message) as caught:
        StatusEntry.from_json(obj, source="cred.jwt")
    assert caught.value.source == "cred.jwt"


_INDEX_PATTERN = re.compile(r"(?:0|[1-9][0-9]{0,17})", re.ASCII)


def test_an_index_is_what_the_pattern_fully_matches_on_every_short_text() -> None:
    for length in range(4):
        for characters in itertools.product("019a -+\u0663\u00b2", repeat=length):
            text = "".join(characters)
            assert _is_index(text) is bool(_INDEX_PATTERN.fullmatch(text)), text
    for text in ("1" * 17, "1" * 18, "1" * 19, "0" * 18, "9" * 18 + "\n", "12\n", " 12"):
        assert _is_index(text) is bool(_INDEX_PATTERN.fullmatch(text)), text


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2000), max_size=20))
def test_an_index_is_what_the_pattern_fully_matches(text: str) -> None:
    assert _is_index(text) is bool(_INDEX_PATTERN.fullmatch(text))


def test_entries_are_one_object_or_an_array() -> None:
    revocation = StatusEntry(URL, 1, REVOCATION)
    suspension = StatusEntry(SUSPENSION_URL, 2, SUSPENSION)
    assert entries_from_json(revocation.to_json()) == (revocation,)
    both = [revocation.to_json(), suspension.to_json()]
    assert entries_from_json(both) == (revocation, suspension)


def test_entries_refuse_an_empty_array_and_two_entries_of_one_purpose() -> None:
    with pytest.raises(MalformedCredentialError, match="credentialStatus is an empty array"):
        entries_from_json([])
    twice = [StatusEntry(URL, 1, REVOCATION).to_json(), StatusEntry(URL, 2, REVOCATION).to_json()]
    with pytest.raises(MalformedCredentialError, match="more than one revocation entry"):
        entries_from_json(twice, source="cred.jwt")
    with pytest.raises(MalformedCredentialError, match="statusListIndex"):
        entries_from_json([StatusEntry(URL, 1, REVOCATION).to_json(), _entry(statusListIndex=7)])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ftp://x/y", 1, REVOCATION), "is not an http"),
        ((URL, -1, REVOCATION), "statusListIndex -1 is not a non-negative integer"),
        ((URL, True, REVOCATION), "statusListIndex True"),
        ((URL, 1, "revocation"), "statusPurpose 'revocation' is not a StatusPurpose"),
    ],
)
def test_entry_validates_on_construction(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatusEntry(*args)


# -- the status list credential -------------------------------------------------------------


def test_payload_is_a_vcdm_2_credential_with_jwt_claims() -> None:
    bits = BitstringStatusList.new()
    bits.set(5, True)
    document = payload(
        bits,
        purpose=SUSPENSION,
        valid_from=T0 + timedelta(microseconds=999_999),
        ttl=timedelta(minutes=10),
    )
    assert document == {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": URL,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": ISSUER,
        "validFrom": "2025-06-01T12:00:00Z",
        "validUntil": "2025-06-02T12:00:00Z",
        "credentialSubject": {
            "id": f"{URL}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "suspension",
            "encodedList": bits.encode(),
            "ttl": 600_000,
        },
        "iss": ISSUER,
        "jti": URL,
        "iat": 1_748_779_200,
        "nbf": 1_748_779_200,
        "exp": 1_748_865_600,
    }
    assert "ttl" not in payload(ttl=None)["credentialSubject"]


def test_payload_reads_back_as_the_same_list() -> None:
    bits = BitstringStatusList.new()
    bits.set(LAST, True)
    document = json.loads(json.dumps(payload(bits)))
    snapshot = read_status_list(document, url=URL, purpose=REVOCATION, at=T0)
    assert snapshot == StatusListSnapshot(
        url=URL,
        issuer=ISSUER,
        purpose=REVOCATION,
        bits=bits,
        valid_from=T0,
        valid_until=T0 + timedelta(days=1),
        ttl=timedelta(minutes=10),
    )
    assert snapshot.status_of(StatusEntry(URL, LAST, REVOCATION))
    assert not snapshot.status_of(StatusEntry(URL, 0, REVOCATION))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "file:///status"}, "status list URL 'file:///status' is not an http"),
        ({"valid_until": T0}, "validUntil 2025-06-01T12:00:00Z must come after validFrom"),
        ({"ttl": timedelta(microseconds=999)}, "must be at least 1 ms"),
    ],
)
def test_payload_refuses_inconsistent_input(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        payload(**changes)


def _mutated(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(payload())
    edit(document)
    return document


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting (or, for None, deleting) the member at a dotted path."""

    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for name in parents:
            target = target[name]
        if value is None:
            del target[last]
        else:
            target[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (_set("@context", ["https://www.w3.org/2018/credentials/v1"]), WrongTypeError, "@context"),
        (_set("@context", None), WrongTypeError, "@context None does not start"),
        (_set("type", ["VerifiableCredential"]), WrongTypeError, "is not VerifiableCredential and"),
        (_set("type", "BitstringStatusListCredential"), WrongTypeError, "type"),
        (_set("id", "https://tsp.example/status/9"), MalformedCredentialError, "not the URL it"),
        (_set("id", None), MalformedCredentialError, "id is None, not the URL it was fetched"),
        (_set("jti", "https://tsp.example/status/9"), MalformedCredentialError, "jti"),
        (_set("issuer", 7), MalformedCredentialError, "issuer 7 is not an identifier"),
        (_set("issuer", {"name": "x"}), MalformedCredentialError, "issuer None is not an"),
        (_set("iss", "urn:other"), MalformedCredentialError, "iss 'urn:other' is not the issuer"),
        (_set("credentialSubject", [{}]), MalformedCredentialError, "not one JSON object"),
        (_set("credentialSubject.type", "StatusList2021"), WrongTypeError, "StatusList2021"),
        (_set("credentialSubject.statusPurpose", "suspension"), WrongTypeError, "not 'revoc"),
        (_set("credentialSubject.statusPurpose", []), MalformedCredentialError, "one or more"),
        (_set("credentialSubject.statusPurpose", 1), MalformedCredentialError, "one or more"),
        (_set("credentialSubject.statusSize", 2), MalformedCredentialError, "statusSize 2"),
        (_set("credentialSubject.ttl", -5), MalformedCredentialError, "ttl -5 is not a positive"),
        (_set("credentialSubject.ttl", "300000"), MalformedCredentialError, "ttl '300000'"),
        (_set("credentialSubject.ttl", 10**20), MalformedCredentialError, "is too large"),
        (_set("credentialSubject.encodedList", None), MalformedCredentialError, "missing or a"),
        (_set("credentialSubject.encodedList", "H4sI"), MalformedCredentialError, "prefix 'u'"),
        (_set("validUntil", None), MalformedCredentialError, "needs validFrom and validUntil"),
        (_set("validFrom", "2025-06-01T12:00:00"), MalformedCredentialError, "with a time zone"),
        (_set("validFrom", "2025-13-01T12:00:00Z"), MalformedCredentialError, "2025-13-01"),
        (_set("validFrom", 1_748_779_200), MalformedCredentialError, "validFrom 1748779200"),
        (_set("validFrom", "2025-06-03T00:00:00Z"), MalformedCredentialError, "before it is"),
        (_set("exp", "soon"), MalformedCredentialError, "exp 'soon' is not a NumericDate"),
        (_set("nbf", 10**30), MalformedCredentialError, "nbf 10{30} is not a representable"),
    ],
)
def test_read_refuses_what_is_not_the_list_asked_for(
    edit: Callable[[dict[str, Any]], None], error: type[CredentialError], message: str
) -> None:
    document = _mutated(edit)
    with pytest.raises(error, match=message) as caught:
        read_status_list(document, url=URL, purpose=REVOCATION, at=T0)
    assert caught.value.source == URL


def test_read_refuses_a_list_for_the_other_purpose_or_url() -> None:
    document = payload(purpose=SUSPENSION)
    with pytest.raises(WrongTypeError, match="for 'suspension', not 'revocation'"):
        read_status_list(document, url=URL, purpose=REVOCATION, at=T0)
    with pytest.raises(MalformedCredentialError, match=f"id is '{URL}', not the URL"):
        read_status_list(document, url=SUSPENSION_URL, purpose=SUSPENSION, at=T0)


def test_read_accepts_the_other_spellings_vcdm_allows() -> None:
    document = _mutated(_set("credentialSubject.statusPurpose", ["suspension", "revocation"]))
    document["issuer"] = {"id": ISSUER, "name": "TSP"}
    for claim in ("iss", "jti", "iat", "nbf", "exp"):
        del document[claim]
    document["validFrom"] = "2025-06-01T14:00:00.5+02:00"
    snapshot = read_status_list(document, url=URL, purpose=REVOCATION, at=T0)
    assert snapshot.issuer == ISSUER
    assert snapshot.valid_from == T0 + timedelta(milliseconds=500)


def test_read_checks_validity_with_skew() -> None:
    document = payload()
    end = T0 + timedelta(days=1)
    read_status_list(document, url=URL, purpose=REVOCATION, at=T0 - timedelta(seconds=59))
    read_status_list(document, url=URL, purpose=REVOCATION, at=end + timedelta(seconds=59))
    with pytest.raises(NotYetValidCredentialError, match=f"{URL}: .* valid from 2025-06-01T12"):
        read_status_list(document, url=URL, purpose=REVOCATION, at=T0 - timedelta(minutes=2))
    with pytest.raises(ExpiredCredentialError, match=f"{URL}: .* expired at 2025-06-02T12:00"):
        read_status_list(document, url=URL, purpose=REVOCATION, at=end + timedelta(minutes=2))
    with pytest.raises(ExpiredCredentialError, match="expired"):
        read_status_list(
            document, url=URL, purpose=REVOCATION, at=end + timedelta(seconds=5), skew=timedelta()
        )


def test_read_takes_the_narrower_of_valid_until_and_exp() -> None:
    document = payload()
    document["exp"] -= 3600
    snapshot = read_status_list(document, url=URL, purpose=REVOCATION, at=T0)
    assert snapshot.valid_until == T0 + timedelta(hours=23)
    with pytest.raises(ExpiredCredentialError, match="expired at 2025-06-02T11:00:00Z"):
        read_status_list(document, url=URL, purpose=REVOCATION, at=T0 + timedelta(hours=23.5))


def test_status_of_reads_the_bit_the_list_reads() -> None:
    bits = BitstringStatusList.new(MIN_LIST_BITS + 64)
    chosen = {0, 1, 7, 8, 9, 4095, MIN_LIST_BITS - 1, MIN_LIST_BITS, MIN_LIST_BITS + 63}
    for index in chosen:
        bits.set(index, True)
    snapshot = StatusListSnapshot(URL, ISSUER, REVOCATION, bits, T0, T0 + timedelta(days=1), None)
    for index in sorted(chosen | {2, 6, 10, 4094, 4096, MIN_LIST_BITS - 2, MIN_LIST_BITS + 62}):
        assert snapshot.status_of(StatusEntry(URL, index, REVOCATION)) is bits.get(index)
        assert snapshot.status_of(StatusEntry(URL, index, REVOCATION)) is (index in chosen)


def test_status_of_an_index_beyond_the_list_is_malformed() -> None:
    snapshot = read_status_list(payload(), url=URL, purpose=REVOCATION, at=T0)
    with pytest.raises(MalformedCredentialError, match="statusListIndex 131072 is beyond"):
        snapshot.status_of(StatusEntry(URL, MIN_LIST_BITS, REVOCATION))
    with pytest.raises(MalformedCredentialError, match="is not in the revocation list"):
        snapshot.status_of(StatusEntry(SUSPENSION_URL, 1, REVOCATION))
    with pytest.raises(MalformedCredentialError, match=r"suspension list .* is not in"):
        snapshot.status_of(StatusEntry(URL, 1, SUSPENSION))


# -- the cache ------------------------------------------------------------------------------


class Publisher:
    """Status list credentials by URL, served as JSON bytes; counts the fetches."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.fetches: list[str] = []
        self.failure: Exception | None = None

    def publish(self, document: dict[str, Any]) -> None:
        self.documents[document["id"]] = document

    def fetch(self, url: str) -> bytes:
        self.fetches.append(url)
        if self.failure is not None:
            raise self.failure
        return json.dumps(self.documents[url]).encode()


def read_json(data: bytes, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
    """Stands in for the caller's JWS verification."""
    return read_status_list(parse_json(data), url=url, purpose=purpose, at=at)


@pytest.fixture
def publisher() -> Publisher:
    publisher = Publisher()
    publisher.publish(payload(ttl=timedelta(minutes=10)))
    publisher.publish(payload(url=SUSPENSION_URL, purpose=SUSPENSION, ttl=None))
    return publisher


@pytest.fixture
def cache(publisher: Publisher) -> StatusListCache:
    return StatusListCache(publisher.fetch, read_json)


def test_cache_hits_until_the_ttl_passes(publisher: Publisher, cache: StatusListCache) -> None:
    first = cache.get(URL, REVOCATION, T0)
    assert cache.get(URL, REVOCATION, T0 + timedelta(minutes=9, seconds=59)) is first
    assert publisher.fetches == [URL]
    fresh = cache.get(URL, REVOCATION, T0 + timedelta(minutes=10))
    assert fresh is not first
    assert publisher.fetches == [URL, URL]


def test_cache_uses_the_default_ttl_when_the_list_has_none(
    publisher: Publisher, cache: StatusListCache
) -> None:
    cache.get(SUSPENSION_URL, SUSPENSION, T0)
    cache.get(SUSPENSION_URL, SUSPENSION, T0 + timedelta(minutes=4))
    assert publisher.fetches == [SUSPENSION_URL]
    cache.get(SUSPENSION_URL, SUSPENSION, T0 + timedelta(minutes=5))
    assert publisher.fetches == [SUSPENSION_URL, SUSPENSION_URL]

    longer = StatusListCache(publisher.fetch, read_json, default_ttl=timedelta(hours=1))
    longer.get(SUSPENSION_URL, SUSPENSION, T0)
    longer.get(SUSPENSION_URL, SUSPENSION, T0 + timedelta(minutes=59))
    assert publisher.fetches.count(SUSPENSION_URL) == 3


def test_cache_never_keeps_a_list_past_its_validity(
    publisher: Publisher, cache: StatusListCache
) -> None:
    publisher.publish(payload(valid_until=T0 + timedelta(minutes=3), ttl=timedelta(hours=1)))
    cache.get(URL, REVOCATION, T0)
    cache.get(URL, REVOCATION, T0 + timedelta(minutes=2))
    assert publisher.fetches == [URL]
    # the list expired at +3 min: the cache refetches, finds the same stale list, refuses it
    with pytest.raises(StatusUnavailableError, match=f"{URL}: the revocation status list is ref"):
        cache.get(URL, REVOCATION, T0 + timedelta(minutes=5))
    assert publisher.fetches == [URL, URL]


def test_cache_keeps_purposes_apart_and_forgets_on_request(
    publisher: Publisher, cache: StatusListCache
) -> None:
    publisher.publish(payload(purpose=SUSPENSION))  # URL now serves the suspension list
    with pytest.raises(StatusUnavailableError, match="for 'suspension', not 'revocation'"):
        cache.get(URL, REVOCATION, T0)
    assert cache.get(URL, SUSPENSION, T0).purpose is SUSPENSION
    cache.get(SUSPENSION_URL, SUSPENSION, T0)
    assert publisher.fetches == [URL, URL, SUSPENSION_URL]

    cache.invalidate(URL)
    cache.get(URL, SUSPENSION, T0)
    cache.get(SUSPENSION_URL, SUSPENSION, T0)
    assert publisher.fetches == [URL, URL, SUSPENSION_URL, URL]
    cache.invalidate()
    cache.get(URL, SUSPENSION, T0)
    cache.get(SUSPENSION_URL, SUSPENSION, T0)
    assert publisher.fetches[4:] == [URL, SUSPENSION_URL]


def test_cache_refetches_for_a_time_before_the_fetch(
    publisher: Publisher, cache: StatusListCache
) -> None:
    cache.get(URL, REVOCATION, T0 + timedelta(minutes=5))
    cache.get(URL, REVOCATION, T0)
    assert publisher.fetches == [URL, URL]


def test_fetch_failure_is_status_unavailable(publisher: Publisher, cache: StatusListCache) -> None:
    publisher.failure = ConnectionError("connection refused")
    with pytest.raises(
        StatusUnavailableError,
        match=f"^{URL}: cannot fetch the revocation status list: ConnectionError: connection ref",
    ) as caught:
        cache.get(URL, REVOCATION, T0)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.hint


def test_no_stale_fallback_when_the_refetch_fails(
    publisher: Publisher, cache: StatusListCache
) -> None:
    cache.get(URL, REVOCATION, T0)
    publisher.failure = TimeoutError()
    with pytest.raises(StatusUnavailableError, match="TimeoutError"):
        cache.get(URL, REVOCATION, T0 + timedelta(minutes=11))
    publisher.failure = None
    cache.get(URL, REVOCATION, T0 + timedelta(minutes=12))
    assert len(publisher.fetches) == 3


def test_read_failures_are_status_unavailable_with_the_cause(publisher: Publisher) -> None:
    def refuse(data: bytes, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        raise ExpiredCredentialError("the list expired", source=url)

    with pytest.raises(
        StatusUnavailableError, match=f"^{URL}: the revocation status list is refused: the list"
    ) as caught:
        StatusListCache(publisher.fetch, refuse).get(URL, REVOCATION, T0)
    assert isinstance(caught.value.__cause__, ExpiredCredentialError)

    def broken(data: bytes, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        raise ValueError("no JWS")

    with pytest.raises(StatusUnavailableError, match="refused: ValueError: no JWS"):
        StatusListCache(publisher.fetch, broken).get(URL, REVOCATION, T0)

    unreachable = StatusUnavailableError("the signer's OCSP responder is down", source=URL)

    def unavailable(
        data: bytes, url: str, purpose: StatusPurpose, at: datetime
    ) -> StatusListSnapshot:
        raise unreachable

    with pytest.raises(StatusUnavailableError) as caught:
        StatusListCache(publisher.fetch, unavailable).get(URL, REVOCATION, T0)
    assert caught.value is unreachable


def test_cache_refuses_a_snapshot_of_another_list(publisher: Publisher) -> None:
    def other(data: bytes, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        return read_json(json.dumps(payload()).encode(), URL, REVOCATION, at)

    cache = StatusListCache(publisher.fetch, other)
    with pytest.raises(StatusUnavailableError, match="gave the revocation list"):
        cache.get(SUSPENSION_URL, SUSPENSION, T0)


def test_concurrent_callers_share_one_fetch(publisher: Publisher) -> None:
    release = threading.Event()

    def slow_fetch(url: str) -> bytes:
        release.wait(timeout=5)
        return publisher.fetch(url)

    cache = StatusListCache(slow_fetch, read_json)
    results: list[StatusListSnapshot] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(URL, REVOCATION, T0)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert len(results) == 8
    assert all(result is results[0] for result in results)
    assert publisher.fetches == [URL]


# -- check_status ---------------------------------------------------------------------------


def _publish(publisher: Publisher, revoked: set[int], suspended: set[int]) -> None:
    revocation, suspension = BitstringStatusList.new(), BitstringStatusList.new()
    for index in revoked:
        revocation.set(index, True)
    for index in suspended:
        suspension.set(index, True)
    publisher.publish(payload(revocation))
    publisher.publish(payload(suspension, url=SUSPENSION_URL, purpose=SUSPENSION))


ENTRIES = (StatusEntry(URL, 7, REVOCATION), StatusEntry(SUSPENSION_URL, 7, SUSPENSION))


def test_check_status_passes_when_every_bit_is_clear(
    publisher: Publisher, cache: StatusListCache
) -> None:
    _publish(publisher, revoked={6, 8}, suspended={0, LAST})
    check_status(ENTRIES, cache, T0)
    check_status(ENTRIES[:1], cache, T0)
    assert publisher.fetches == [URL, SUSPENSION_URL]


def test_check_status_raises_for_a_revoked_credential(
    publisher: Publisher, cache: StatusListCache
) -> None:
    _publish(publisher, revoked={7}, suspended=set())
    with pytest.raises(
        RevokedCredentialError, match=f"revoked: index 7 of the revocation status list {URL} is"
    ):
        check_status(ENTRIES, cache, T0)


def test_check_status_raises_for_a_suspended_credential(
    publisher: Publisher, cache: StatusListCache
) -> None:
    _publish(publisher, revoked=set(), suspended={7})
    with pytest.raises(
        SuspendedCredentialError,
        match=f"suspended: index 7 of the suspension status list {SUSPENSION_URL} is set",
    ):
        check_status(ENTRIES, cache, T0)
    # a suspension is lifted by clearing the bit; the next fetch after the TTL sees it
    _publish(publisher, revoked=set(), suspended=set())
    check_status(ENTRIES, cache, T0 + timedelta(minutes=10))


def test_check_status_reports_revocation_before_suspension(
    publisher: Publisher, cache: StatusListCache
) -> None:
    _publish(publisher, revoked={7}, suspended={7})
    with pytest.raises(RevokedCredentialError, match="revoked"):
        check_status(ENTRIES[::-1], cache, T0)


def test_check_status_fails_closed(publisher: Publisher, cache: StatusListCache) -> None:
    with pytest.raises(StatusUnavailableError, match="names no status list"):
        check_status([], cache, T0)
    with pytest.raises(MalformedCredentialError, match="statusListIndex 131072 is beyond"):
        check_status([StatusEntry(URL, MIN_LIST_BITS, REVOCATION)], cache, T0)
    other = StatusEntry(URL, 1, REVOCATION)
    object.__setattr__(other, "purpose", "message")  # past the constructor's check
    with pytest.raises(MalformedCredentialError, match="status purpose 'message' cannot be"):
        check_status([ENTRIES[0], other], cache, T0)
    publisher.failure = OSError("network unreachable")
    with pytest.raises(StatusUnavailableError, match=f"{SUSPENSION_URL}: cannot fetch"):
        check_status(ENTRIES, cache, T0)  # the revocation list is cached, the other is not
