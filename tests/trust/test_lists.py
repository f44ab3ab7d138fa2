"""Signed trust lists and the LOTL: publishing, reading fail-closed, rotation, queries."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from joserfc import jwk, jws
from joserfc.errors import BadSignatureError

from tests.softhsm import SoftHsmToken
from trustbridge import oids
from trustbridge._canonical import canonical_json
from trustbridge.errors import InputError
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.pkcs11 import Pkcs11KeyRef, generate_key
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.signers import FileSigner, Signer
from trustbridge.trust import _jws
from trustbridge.trust.lists import (
    LOTL_TYPE,
    TRUST_LIST_TYPE,
    AcceptedList,
    EquivocationError,
    FileListState,
    LevelEquivalence,
    ListState,
    ListStateError,
    Lotl,
    MalformedListError,
    MemoryListState,
    NotYetValidListError,
    Operator,
    Pointer,
    Provider,
    RollbackError,
    Service,
    ServiceKind,
    ServiceStatus,
    StaleListError,
    StatusChange,
    TamperedListError,
    TrustList,
    TrustListError,
    UnauthorizedSignerError,
    read_lotl,
    read_trust_list,
    recognized,
    sign_lotl,
    sign_trust_list,
)
from trustbridge.trust.reference import GERMANY, JAPAN
from trustbridge.trust.schemes import TrustScheme

AT = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
#: The day Rheintal's devices CA is suspended in the status-history tests.
SUSPENDED_SINCE = AT + 10 * DAY

ITG = TrustScheme.create(
    "itg",
    "Industrial Trust Group",
    [("itg-loa1", oids.ITG_LOA1), ("itg-loa2", oids.ITG_LOA2), ("itg-loa3", oids.ITG_LOA3)],
)


# -- keys and certificates, made fresh per test module ----------------------------------------


@dataclass(frozen=True)
class KeyPair:
    signer: Signer
    certificate: x509.Certificate


def _certificate(
    signer: Signer, common_name: str, *, serial: int | None = None
) -> x509.Certificate:
    """A self-signed certificate over the signer's key (signed through the Signer)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return self_signed_certificate(
        signer,
        name,
        not_before=AT - 365 * DAY,
        not_after=AT + 5 * 365 * DAY,
        ca=True,
        serial=serial,
    )


def _key_pair(common_name: str, key_type: KeyType = KeyType.P256) -> KeyPair:
    signer = FileSigner(generate_private_key(key_type), source=common_name)
    return KeyPair(signer, _certificate(signer, common_name))


@dataclass(frozen=True)
class World:
    """The reference scenario's list signers and service certificates."""

    lotl_a: KeyPair
    lotl_b: KeyPair
    lotl_c: KeyPair
    de_signer: KeyPair
    jp_signer: KeyPair
    rheintal_people: KeyPair
    rheintal_devices: KeyPair
    rheintal_tsa: KeyPair
    nordsee: KeyPair
    sakura: KeyPair


@pytest.fixture(scope="module")
def world() -> World:
    return World(
        lotl_a=_key_pair("ITG LOTL Signer A"),
        lotl_b=_key_pair("ITG LOTL Signer B", KeyType.ED25519),
        lotl_c=_key_pair("Unannounced Signer C"),
        de_signer=_key_pair("DE Trust List Signer"),
        jp_signer=_key_pair("JP Trust List Signer", KeyType.ED25519),
        rheintal_people=_key_pair("Rheintal Trust Services People CA"),
        rheintal_devices=_key_pair("Rheintal Trust Services Devices CA", KeyType.P384),
        rheintal_tsa=_key_pair("Rheintal Trust Services TSA"),
        nordsee=_key_pair("Nordsee Certification GmbH"),
        sakura=_key_pair("Sakura Identity CA"),
    )


# -- the lists of the reference scenario ------------------------------------------------------


def _granted(since: datetime = AT - 30 * DAY) -> tuple[StatusChange, ...]:
    return (StatusChange(ServiceStatus.GRANTED, since),)


def de_list(world: World, *, sequence: int = 1, issued_at: datetime = AT) -> TrustList:
    return TrustList(
        id="de",
        scheme=GERMANY,
        operator=Operator("DE Industrial Trust Scheme", "DE"),
        sequence=sequence,
        issued_at=issued_at,
        next_update=issued_at + 30 * DAY,
        providers=(
            Provider(
                name="Rheintal Trust Services GmbH",
                country="DE",
                organization_identifier="VATDE-123456789",
                services=(
                    Service(
                        name="Rheintal Trust Services People CA",
                        kind=ServiceKind.CA,
                        certificates=(world.rheintal_people.certificate,),
                        status_history=_granted(),
                        subject_kinds=(SubjectKind.ORGANIZATION, SubjectKind.PERSON),
                        levels=GERMANY.levels,
                    ),
                    Service(
                        name="Rheintal Trust Services Devices CA",
                        kind=ServiceKind.CA,
                        certificates=(world.rheintal_devices.certificate,),
                        status_history=(
                            StatusChange(ServiceStatus.GRANTED, AT - 30 * DAY),
                            StatusChange(ServiceStatus.SUSPENDED, SUSPENDED_SINCE),
                        ),
                        subject_kinds=(SubjectKind.MACHINE, SubjectKind.SOFTWARE),
                        levels=(GERMANY.level("de-substantial"), GERMANY.level("de-high")),
                    ),
                    Service(
                        name="Rheintal Trust Services TSA",
                        kind=ServiceKind.TSA,
                        certificates=(world.rheintal_tsa.certificate,),
                        status_history=_granted(),
                    ),
                ),
            ),
            Provider(
                name="Nordsee Certification GmbH",
                country="DE",
                organization_identifier="NTRDE-HRB4711",
                services=(
                    Service(
                        name="Nordsee product certification",
                        kind=ServiceKind.CAB,
                        certificates=(world.nordsee.certificate,),
                        status_history=_granted(),
                        scope=("iec-62443-4-1", "iec-62443-4-2", "iso-iec-27001"),
                    ),
                ),
            ),
        ),
    )


def jp_list(world: World, *, sequence: int = 1) -> TrustList:
    return TrustList(
        id="jp",
        scheme=JAPAN,
        operator=Operator("JP Industrial Trust Scheme", "JP"),
        sequence=sequence,
        issued_at=AT,
        next_update=AT + 30 * DAY,
        providers=(
            Provider(
                name="Sakura Trust Service K.K.",
                country="JP",
                organization_identifier="NTRJP-1234567890123",
                services=(
                    Service(
                        name="Sakura Identity CA",
                        kind=ServiceKind.CA,
                        certificates=(world.sakura.certificate,),
                        status_history=_granted(),
                        subject_kinds=(SubjectKind.ORGANIZATION,),
                        levels=JAPAN.levels,
                    ),
                ),
            ),
        ),
    )


def _equivalences(scheme: TrustScheme) -> tuple[LevelEquivalence, ...]:
    return LevelEquivalence.by_rank(scheme, ITG)


def _pointer(scheme: TrustScheme, country: str, signer: KeyPair) -> Pointer:
    return Pointer(
        scheme=scheme.code,
        country=country,
        location=f"https://lists.example/{scheme.code}.jws",
        signers=(signer.certificate,),
    )


def itg_lotl(
    world: World,
    *,
    sequence: int = 1,
    issued_at: datetime = AT,
    next_signers: Sequence[x509.Certificate] = (),
    extra: Sequence[tuple[TrustScheme, str, KeyPair]] = (),
) -> Lotl:
    schemes = ((GERMANY, "DE", world.de_signer), (JAPAN, "JP", world.jp_signer), *extra)
    return Lotl(
        group=ITG,
        operator=Operator("Industrial Trust Group", "DE"),
        sequence=sequence,
        issued_at=issued_at,
        next_update=issued_at + 90 * DAY,
        pointers=tuple(_pointer(s, country, signer) for s, country, signer in schemes),
        equivalences=tuple(eq for s, _, _ in schemes for eq in _equivalences(s)),
        next_signers=tuple(next_signers),
    )


def _sign_lotl(lotl: Lotl, key: KeyPair) -> bytes:
    return sign_lotl(lotl, key.signer, chain=[key.certificate])


def _sign_de(trust_list: TrustList, world: World) -> bytes:
    return sign_trust_list(trust_list, world.de_signer.signer, chain=[world.de_signer.certificate])


def _parts(token: bytes) -> list[str]:
    return token.decode().split(".")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _payload(token: bytes) -> Any:
    """The JSON payload of a signed list, parsed."""
    return json.loads(_unb64url(_parts(token)[1]))


def _resigned(document: dict[str, Any], key: KeyPair, typ: str) -> bytes:
    """``document``, changed by a test, signed by ``key`` through the JWS layer alone."""
    return _jws.sign_compact(
        canonical_json(document), signer=key.signer, chain=[key.certificate], typ=typ
    )


def _accepted_lotl(world: World, state: ListState, **changes: Any) -> Lotl:
    lotl = itg_lotl(world, **changes)
    read_lotl(
        _sign_lotl(lotl, world.lotl_a),
        trusted_signers=[world.lotl_a.certificate],
        at=AT,
        state=state,
    )
    return lotl


# -- publishing and round trips ---------------------------------------------------------------


EXPECTED_ALG = {
    KeyType.P256: "ES256",
    KeyType.P384: "ES384",
    KeyType.ED25519: "EdDSA",
    KeyType.RSA2048: "RS256",
}


@pytest.mark.parametrize("key_type", list(EXPECTED_ALG))
def test_trust_list_round_trip_and_alg_per_key_type(world: World, key_type: KeyType) -> None:
    signer = _key_pair("DE Trust List Signer", key_type)
    lotl = replace(
        itg_lotl(world),
        pointers=(_pointer(GERMANY, "DE", signer), _pointer(JAPAN, "JP", world.jp_signer)),
    )
    original = de_list(world)
    token = sign_trust_list(original, signer.signer, chain=[signer.certificate])

    header = json.loads(_unb64url(_parts(token)[0]))
    assert header["alg"] == EXPECTED_ALG[key_type]
    assert header["typ"] == TRUST_LIST_TYPE
    assert base64.b64decode(header["x5c"][0]) == signer.certificate.public_bytes(Encoding.DER)

    state = MemoryListState()
    assert read_trust_list(token, lotl=lotl, at=AT, state=state) == original
    accepted = state.accepted("trust-list:de")
    assert accepted is not None and accepted.sequence == 1


def test_lotl_round_trip_records_sequence_and_signers(world: World) -> None:
    original = itg_lotl(world, next_signers=[world.lotl_b.certificate])
    state = MemoryListState()
    lotl = read_lotl(
        _sign_lotl(original, world.lotl_a),
        trusted_signers=[world.lotl_a.certificate],
        at=AT,
        state=state,
    )
    assert lotl == original
    accepted = state.accepted("lotl:itg")
    assert isinstance(accepted, AcceptedList)
    assert accepted.sequence == 1 and len(accepted.digest) == 64
    assert state.lotl_signers() == (world.lotl_a.certificate, world.lotl_b.certificate)


def test_payload_is_canonical_json_that_follows_the_schema(world: World) -> None:
    token = _sign_lotl(itg_lotl(world), world.lotl_a)
    payload = _unb64url(_parts(token)[1])
    document = json.loads(payload)
    assert payload == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["group"]["levels"][0] == {
        "name": "itg-loa1",
        "oid": oids.ITG_LOA1.dotted_string,
    }
    assert document["issued_at"] == "2026-06-01T00:00:00Z"
    de_payload = _payload(_sign_de(de_list(world), world))
    devices = de_payload["providers"][0]["services"][1]
    assert devices["levels"] == ["de-substantial", "de-high"]
    assert devices["status_history"][-1] == {"status": "suspended", "since": "2026-06-11T00:00:00Z"}
    assert "scope" not in devices


def _jose_key(certificate: x509.Certificate, key_type: KeyType) -> jwk.Key:
    public_key = certificate.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    if key_type is KeyType.ED25519:
        return jwk.import_key(public_key, "OKP")
    if key_type.is_rsa:
        return jwk.import_key(public_key, "RSA")
    return jwk.import_key(public_key, "EC")


@pytest.mark.parametrize("key_type", list(EXPECTED_ALG))
def test_joserfc_verifies_what_we_sign(world: World, key_type: KeyType) -> None:
    signer = _key_pair("ITG LOTL Signer", key_type)
    token = _sign_lotl(itg_lotl(world), signer)
    alg = EXPECTED_ALG[key_type]
    registry = jws.JWSRegistry(algorithms=[alg])
    registry.max_header_length = 16 * 1024  # x5c does not fit joserfc's default of 512 bytes
    key = _jose_key(signer.certificate, key_type)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated")  # joserfc, RFC 9864
        verified = jws.deserialize_compact(token, key, registry=registry)
    assert verified.protected["typ"] == LOTL_TYPE
    assert json.loads(verified.payload)["group"]["code"] == "itg"

    header, payload, signature = _parts(token)
    changed = _b64url(_unb64url(payload).replace(b"Industrial", b"Industriel"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated")
        with pytest.raises(BadSignatureError):
            jws.deserialize_compact(f"{header}.{changed}.{signature}", key, registry=registry)


def test_signing_refuses_a_chain_for_another_key(world: World) -> None:
    with pytest.raises(InputError, match="does not certify the key of file:ITG LOTL Signer A"):
        sign_lotl(itg_lotl(world), world.lotl_a.signer, chain=[world.lotl_b.certificate])
    with pytest.raises(InputError, match="needs the signer's certificate chain"):
        sign_lotl(itg_lotl(world), world.lotl_a.signer, chain=[])


@pytest.mark.softhsm
def test_a_token_key_signs_a_trust_list(world: World, softhsm_token: SoftHsmToken) -> None:
    ref = Pkcs11KeyRef(
        module=softhsm_token.module, token=softhsm_token.label, label=f"tl-{uuid.uuid4().hex}"
    )
    signer = generate_key(ref, KeyType.P256, softhsm_token.pin)
    token_signer = KeyPair(signer, _certificate(signer, "DE Trust List Signer (HSM)"))
    lotl = replace(
        itg_lotl(world),
        pointers=(_pointer(GERMANY, "DE", token_signer), _pointer(JAPAN, "JP", world.jp_signer)),
    )
    token = sign_trust_list(de_list(world), signer, chain=[token_signer.certificate])
    assert read_trust_list(token, lotl=lotl, at=AT, state=MemoryListState()) == de_list(world)


# -- refusals ---------------------------------------------------------------------------------


def test_a_lotl_from_an_unpinned_signer_is_refused(world: World) -> None:
    token = _sign_lotl(itg_lotl(world), world.lotl_c)
    state = MemoryListState()
    with pytest.raises(UnauthorizedSignerError, match="CN=Unannounced Signer C") as info:
        read_lotl(token, trusted_signers=[world.lotl_a.certificate], at=AT, state=state)
    assert info.value.signer == world.lotl_c.certificate
    assert "LOTL: is signed by" in str(info.value)
    assert state.accepted("lotl:itg") is None


def test_a_trust_list_signed_by_another_schemes_signer_is_refused(world: World) -> None:
    lotl = itg_lotl(world)
    jp_signed = sign_trust_list(
        de_list(world), world.jp_signer.signer, chain=[world.jp_signer.certificate]
    )
    with pytest.raises(
        UnauthorizedSignerError,
        match=r"trust list de, sequence 1: .*JP Trust List Signer.* does not name as a signer of "
        "scheme de",
    ):
        read_trust_list(jp_signed, lotl=lotl, at=AT, state=MemoryListState())

    stranger = sign_trust_list(
        de_list(world), world.lotl_c.signer, chain=[world.lotl_c.certificate]
    )
    with pytest.raises(UnauthorizedSignerError, match="not named by a pointer of LOTL itg"):
        read_trust_list(stranger, lotl=lotl, at=AT, state=MemoryListState(), source="de.jws")


def test_a_changed_payload_byte_is_tampering(world: World) -> None:
    header, payload, signature = _parts(_sign_de(de_list(world), world))
    changed = _unb64url(payload).replace(b"Nordsee Certification", b"Nordsee Certificatiom")
    token = f"{header}.{_b64url(changed)}.{signature}".encode()
    state = MemoryListState()
    with pytest.raises(TamperedListError, match="changed after signing"):
        read_trust_list(token, lotl=itg_lotl(world), at=AT, state=state)
    assert state.accepted("trust-list:de") is None


def test_a_changed_header_is_tampering(world: World) -> None:
    header, payload, signature = _parts(_sign_de(de_list(world), world))
    fields = json.loads(_unb64url(header))
    fields["kid"] = "de-2026"
    token = f"{_b64url(json.dumps(fields).encode())}.{payload}.{signature}".encode()
    with pytest.raises(TamperedListError, match=r"trust list from https://x/de\.jws: its sig"):
        read_trust_list(
            token, lotl=itg_lotl(world), at=AT, state=MemoryListState(), source="https://x/de.jws"
        )


def test_every_changed_character_is_refused(world: World) -> None:
    token = _sign_de(de_list(world), world).decode()
    header_end = token.index(".")
    lotl = itg_lotl(world)
    state = MemoryListState()
    for position, character in enumerate(token):
        if character == ".":
            continue
        other = "A" if character != "A" else "B"
        changed = (token[:position] + other + token[position + 1 :]).encode()
        expected: tuple[type[TrustListError], ...] = (TamperedListError,)
        if position < header_end:  # a changed x5c names another, unauthorized, signer
            expected = (TamperedListError, UnauthorizedSignerError)
        with pytest.raises(expected):
            read_trust_list(changed, lotl=lotl, at=AT, state=state)
    assert state.accepted("trust-list:de") is None


def test_a_schema_violation_is_reported_with_its_path(world: World) -> None:
    document = _payload(_sign_de(de_list(world), world))
    document["providers"][1]["country"] = "de"
    token = _resigned(document, world.de_signer, TRUST_LIST_TYPE)
    with pytest.raises(
        MalformedListError, match=r"schema at \$\.providers\[1\]\.country: 'de' does not match"
    ) as info:
        read_trust_list(token, lotl=itg_lotl(world), at=AT, state=MemoryListState())
    assert info.value.path == "$.providers[1].country"


def test_a_tsa_with_levels_violates_the_schema(world: World) -> None:
    document = _payload(_sign_de(de_list(world), world))
    document["providers"][0]["services"][2]["levels"] = ["de-high"]
    token = _resigned(document, world.de_signer, TRUST_LIST_TYPE)
    with pytest.raises(
        MalformedListError,
        match=r"\$\.providers\[0\]\.services\[2\]\.levels: \['de-high'\] is expected to be empty",
    ):
        read_trust_list(token, lotl=itg_lotl(world), at=AT, state=MemoryListState())


def test_an_impossible_date_is_malformed(world: World) -> None:
    document = _payload(_sign_lotl(itg_lotl(world), world.lotl_a))
    document["next_update"] = "2026-02-30T00:00:00Z"
    token = _resigned(document, world.lotl_a, LOTL_TYPE)
    with pytest.raises(MalformedListError, match="LOTL: has an invalid value: day is out of"):
        read_lotl(token, trusted_signers=[world.lotl_a.certificate], at=AT, state=MemoryListState())


def test_a_lotl_offered_as_trust_list_is_malformed(world: World) -> None:
    payload = _unb64url(_parts(_sign_de(de_list(world), world))[1])
    token = _jws.sign_compact(
        payload, signer=world.de_signer.signer, chain=[world.de_signer.certificate], typ=LOTL_TYPE
    )
    with pytest.raises(MalformedListError, match="has typ 'trustbridge-lotl\\+jws' instead of"):
        read_trust_list(token, lotl=itg_lotl(world), at=AT, state=MemoryListState())


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not a jws", "1 dot-separated parts instead of 3"),
        (b"a.b", "2 dot-separated parts instead of 3"),
        (b"a..c", "a part is empty or not base64url"),
        ("é.b.c".encode(), "not ASCII"),
    ],
)
def test_what_is_no_jws_is_malformed(world: World, data: bytes, problem: str) -> None:
    with pytest.raises(MalformedListError, match=f"LOTL: is not a JWS .*{problem}"):
        read_lotl(data, trusted_signers=[world.lotl_a.certificate], at=AT, state=MemoryListState())


def test_rollback_is_refused_after_a_restart(world: World, tmp_path: Path) -> None:
    path = tmp_path / "state" / "lists.json"
    older = _sign_de(de_list(world, sequence=1), world)
    newer = _sign_de(de_list(world, sequence=2), world)
    lotl = itg_lotl(world)
    read_trust_list(newer, lotl=lotl, at=AT, state=FileListState(path))

    reopened = FileListState(path)
    with pytest.raises(
        RollbackError, match="trust list de, sequence 1: sequence 1 is older than sequence 2"
    ) as info:
        read_trust_list(older, lotl=lotl, at=AT, state=reopened)
    assert (info.value.sequence, info.value.highest) == (1, 2)
    assert read_trust_list(newer, lotl=lotl, at=AT, state=reopened).sequence == 2
    assert not list(path.parent.glob(".lists.json.*"))  # no temporary file left behind


def test_one_sequence_with_two_contents_is_equivocation(world: World) -> None:
    state = MemoryListState()
    lotl = itg_lotl(world)
    read_trust_list(_sign_de(de_list(world), world), lotl=lotl, at=AT, state=state)
    # ECDSA signs differently each time: the same content, signed again, is the same list
    read_trust_list(_sign_de(de_list(world), world), lotl=lotl, at=AT, state=state)
    different = de_list(world, issued_at=AT - DAY)
    with pytest.raises(EquivocationError, match="two different lists with one sequence number"):
        read_trust_list(_sign_de(different, world), lotl=lotl, at=AT, state=state)
    assert issubclass(EquivocationError, RollbackError)


def test_a_stale_list_is_refused_and_not_remembered(world: World) -> None:
    token = _sign_lotl(itg_lotl(world), world.lotl_a)
    state = MemoryListState()
    pins = [world.lotl_a.certificate]
    late = AT + 91 * DAY
    with pytest.raises(StaleListError, match="LOTL itg, sequence 1: is stale: its next update"):
        read_lotl(token, trusted_signers=pins, at=late, state=state)
    assert state.accepted("lotl:itg") is None
    assert read_lotl(token, trusted_signers=pins, at=AT + 90 * DAY, state=state).sequence == 1


def test_a_list_from_the_future_is_refused(world: World) -> None:
    pins = [world.lotl_a.certificate]
    token = _sign_lotl(itg_lotl(world, issued_at=AT + timedelta(minutes=10)), world.lotl_a)
    with pytest.raises(NotYetValidListError, match="was issued at 2026-06-01T00:10:00"):
        read_lotl(token, trusted_signers=pins, at=AT, state=MemoryListState())
    within_skew = _sign_lotl(itg_lotl(world, issued_at=AT + timedelta(minutes=4)), world.lotl_a)
    read_lotl(within_skew, trusted_signers=pins, at=AT, state=MemoryListState())


def test_a_damaged_state_file_fails_closed(world: World, tmp_path: Path) -> None:
    path = tmp_path / "lists.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ListStateError, match=f"list state {path}: is damaged"):
        read_lotl(
            _sign_lotl(itg_lotl(world), world.lotl_a),
            trusted_signers=[world.lotl_a.certificate],
            at=AT,
            state=FileListState(path),
        )
    path.write_text('{"lists": {}}', encoding="utf-8")
    with pytest.raises(ListStateError, match="is not a trustbridge-list-state/1 file"):
        FileListState(path).accepted("lotl:itg")


# -- rotation and growth ----------------------------------------------------------------------


def test_lotl_signer_rotation(world: World, tmp_path: Path) -> None:
    pins = [world.lotl_a.certificate]
    path = tmp_path / "lists.json"
    announcing = itg_lotl(world, sequence=1, next_signers=[world.lotl_b.certificate])
    by_b = _sign_lotl(itg_lotl(world, sequence=2), world.lotl_b)

    # a relying party that never saw the announcement does not follow the rotation
    with pytest.raises(UnauthorizedSignerError, match="ITG LOTL Signer B"):
        read_lotl(by_b, trusted_signers=pins, at=AT, state=MemoryListState())

    read_lotl(
        _sign_lotl(announcing, world.lotl_a), trusted_signers=pins, at=AT, state=FileListState(path)
    )
    assert read_lotl(by_b, trusted_signers=pins, at=AT, state=FileListState(path)).sequence == 2
    # afterwards B goes on signing, though it is not pinned and no longer announced
    third = _sign_lotl(itg_lotl(world, sequence=3), world.lotl_b)
    assert read_lotl(third, trusted_signers=pins, at=AT, state=FileListState(path)).sequence == 3
    # and one nobody announced is refused
    by_c = _sign_lotl(itg_lotl(world, sequence=4), world.lotl_c)
    with pytest.raises(UnauthorizedSignerError, match="Unannounced Signer C"):
        read_lotl(by_c, trusted_signers=pins, at=AT, state=FileListState(path))


def test_a_third_scheme_joins_without_reconfiguration(world: World) -> None:
    korea = TrustScheme.create(
        "kr",
        "Korean industrial trust scheme",
        [("kr-level1", None), ("kr-level2", None), ("kr-level3", None)],
    )
    kr_signer = _key_pair("KR Trust List Signer")
    pins = [world.lotl_a.certificate]
    state = MemoryListState()
    _accepted_lotl(world, state)

    grown = itg_lotl(world, sequence=2, extra=[(korea, "KR", kr_signer)])
    lotl = read_lotl(_sign_lotl(grown, world.lotl_a), trusted_signers=pins, at=AT, state=state)
    pointer = lotl.pointer("kr")
    assert pointer is not None and pointer.location == "https://lists.example/kr.jws"
    level = lotl.reference_level("kr", korea.level("kr-level2").oid)
    assert level is not None and level.name == "itg-loa2"

    kr_list = TrustList(
        id="kr",
        scheme=korea,
        operator=Operator("KR Industrial Trust Scheme", "KR"),
        sequence=1,
        issued_at=AT,
        next_update=AT + 30 * DAY,
        providers=(),
    )
    token = sign_trust_list(kr_list, kr_signer.signer, chain=[kr_signer.certificate])
    assert read_trust_list(token, lotl=lotl, at=AT, state=state) == kr_list


# -- queries ----------------------------------------------------------------------------------


def test_levels_and_pointers(world: World) -> None:
    lotl = itg_lotl(world)
    de_pointer = lotl.pointer("de")
    assert de_pointer is not None and de_pointer.signers == (world.de_signer.certificate,)
    assert lotl.pointer("fr") is None
    assert lotl.reference_level("de", oids.DE_HIGH) == ITG.level("itg-loa3")
    assert lotl.reference_level("jp", oids.JP_LEVEL1.dotted_string) == ITG.level("itg-loa1")
    assert lotl.reference_level("jp", oids.DE_HIGH) is None


def test_status_history_decides_recognition(world: World) -> None:
    trust_list = de_list(world)
    devices = world.rheintal_devices.certificate
    before, after = SUSPENDED_SINCE - DAY, SUSPENDED_SINCE + DAY

    match = recognized(trust_list, devices, kind=ServiceKind.CA, at=before)
    assert match is not None
    assert match.provider.name == "Rheintal Trust Services GmbH"
    assert match.service.levels == (GERMANY.level("de-substantial"), GERMANY.level("de-high"))
    assert recognized(trust_list, devices, kind=ServiceKind.CA, at=after) is None
    assert recognized(trust_list, devices, kind=ServiceKind.CA, at=AT - 60 * DAY) is None

    (suspended,) = trust_list.services_for(devices, at=after)
    assert suspended.status is ServiceStatus.SUSPENDED
    assert suspended.service.status is ServiceStatus.SUSPENDED
    (unlisted,) = trust_list.services_for(devices, at=AT - 60 * DAY)
    assert unlisted.status is None


def test_services_are_found_by_key(world: World) -> None:
    trust_list = de_list(world)
    people = world.rheintal_people
    reissued = _certificate(people.signer, "Rheintal Trust Services People CA", serial=2)
    assert reissued.fingerprint(hashes.SHA256()) != people.certificate.fingerprint(hashes.SHA256())
    (match,) = trust_list.services_for(reissued, at=AT)
    assert match.service.name == "Rheintal Trust Services People CA"
    spki = people.certificate.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    assert trust_list.services_for(spki, kind=ServiceKind.CA, at=AT) == (match,)
    assert trust_list.services_for(spki, kind=ServiceKind.TSA, at=AT) == ()
    assert recognized(trust_list, people.certificate, kind=ServiceKind.TSA, at=AT) is None
    tsa = recognized(trust_list, world.rheintal_tsa.certificate, kind=ServiceKind.TSA, at=AT)
    assert tsa is not None and tsa.service.kind is ServiceKind.TSA
    cab = recognized(trust_list, world.nordsee.certificate, kind=ServiceKind.CAB, at=AT)
    assert cab is not None and "iec-62443-4-1" in cab.service.scope


# -- the model validates itself ---------------------------------------------------------------


def test_the_model_refuses_what_the_schema_refuses(world: World) -> None:
    with pytest.raises(InputError, match=r"trust list de, sequence 1: \$\.operator\.country"):
        replace(de_list(world), operator=Operator("DE Industrial Trust Scheme", "Germany"))
    with pytest.raises(InputError, match=r"\$\.sequence: 0 is less than the minimum of 1"):
        replace(de_list(world), sequence=0)
    with pytest.raises(InputError, match="next_update must come after issued_at"):
        replace(de_list(world), next_update=AT)


def test_the_model_checks_what_the_schema_cannot(world: World) -> None:
    with pytest.raises(InputError, match="strictly ascending time"):
        Service(
            name="Rheintal Trust Services TSA",
            kind=ServiceKind.TSA,
            certificates=(world.rheintal_tsa.certificate,),
            status_history=(
                StatusChange(ServiceStatus.SUSPENDED, AT),
                StatusChange(ServiceStatus.GRANTED, AT - DAY),
            ),
        )
    foreign = replace(de_list(world).providers[0].services[0], levels=(JAPAN.level("jp-level1"),))
    provider = replace(de_list(world).providers[0], services=(foreign,))
    with pytest.raises(InputError, match=r"names levels \['jp-level1'\] that scheme de does not"):
        replace(de_list(world), providers=(provider,))
    with pytest.raises(InputError, match="is not a reference level of group itg"):
        replace(itg_lotl(world), equivalences=(LevelEquivalence("de", oids.DE_HIGH, oids.DE_HIGH),))
    with pytest.raises(InputError, match="equivalence for scheme fr without pointer"):
        replace(
            itg_lotl(world), equivalences=(LevelEquivalence("fr", oids.DE_HIGH, oids.ITG_LOA1),)
        )
    lotl = itg_lotl(world)
    with pytest.raises(InputError, match="more than one pointer per scheme"):
        replace(lotl, pointers=(*lotl.pointers, lotl.pointers[0]))


def test_the_schemas_are_published_and_valid() -> None:
    folder = resources.files("trustbridge.trust") / "schemas"
    for name in ("trust-list", "lotl"):
        schema = json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"urn:trustbridge:schema:{name}"


def test_level_equivalences_by_rank() -> None:
    table = LevelEquivalence.by_rank(GERMANY, ITG)
    assert [(e.scheme, e.national, e.reference) for e in table] == [
        ("de", oids.DE_BASIC, oids.ITG_LOA1),
        ("de", oids.DE_SUBSTANTIAL, oids.ITG_LOA2),
        ("de", oids.DE_HIGH, oids.ITG_LOA3),
    ]
    two_levels = TrustScheme(code="xx", name="Two levels", levels=GERMANY.levels[:2])
    with pytest.raises(InputError, match="scheme xx has 2 levels, the group itg 3"):
        LevelEquivalence.by_rank(two_levels, ITG)
