"""Checkpoints as C2SP signed notes, witness cosignatures, and what monitors check."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from trustbridge.errors import InputError
from trustbridge.ledger import (
    Checkpoint,
    CheckpointError,
    Cosignature,
    LogKey,
    MerkleTree,
    NoteFormatError,
    ProofError,
    RollbackError,
    SignedCheckpoint,
    SplitViewError,
    WitnessKey,
    add_signatures,
    check_update,
    cosign,
    leaf_hash,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from trustbridge.ledger.note import MAX_NOTE_SIZE, MAX_SIGNATURES
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.signers import FileSigner

DASH = "\u2014"
ORIGIN = "ledger.trustbridge.example/log"
AT = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)

# -- published vectors --------------------------------------------------------------------------
# golang.org/x/mod, sumdb/note/note_test.go (TestSign, TestOpen): the PeterNeumann signer key
# (0x01 || Ed25519 seed), its verifier key, the text and the exact note it signs, and
# EnochRoot's verifier key and signature line over the same text.
GO_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_LINE = (
    f"{DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
ENOCH_LINE = (
    f"{DASH} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
).encode()
# The example of the C2SP signed-note specification ("Verifier keys", example.com/foo).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    f"This is an example message.\n\n{DASH} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6Tf"
    "Xppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()
# transparency-dev/formats, note/note_verifier_test.go (TestCoSigV1NewVerifier): a
# cosignature/v1 verifier key (type 0x04) and its key ID.
WITNESS_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# The same file: an Ed25519 (type 0x01) verifier key whose base64 contains a '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def _signer(label: str) -> FileSigner:
    """A deterministic Ed25519 signer, so failures reproduce."""
    seed = hashlib.sha256(label.encode()).digest()
    return FileSigner(Ed25519PrivateKey.from_private_bytes(seed), source=label)


@pytest.fixture(scope="module")
def log_signer() -> FileSigner:
    return _signer("log")


@pytest.fixture(scope="module")
def log_key(log_signer: FileSigner) -> LogKey:
    return LogKey.for_signer(log_signer, name=ORIGIN)


@pytest.fixture(scope="module")
def witness_signers() -> list[FileSigner]:
    return [_signer("witness-1"), _signer("witness-2")]


@pytest.fixture(scope="module")
def witness_keys(witness_signers: list[FileSigner]) -> list[WitnessKey]:
    return [
        WitnessKey.for_signer(signer, name=f"witness{number}.example")
        for number, signer in enumerate(witness_signers, start=1)
    ]


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree(leaf_hash(b"entry %d" % number) for number in range(40))


@pytest.fixture(scope="module")
def checkpoint(tree: MerkleTree) -> Checkpoint:
    return Checkpoint(ORIGIN, 40, tree.root())


@pytest.fixture(scope="module")
def note(checkpoint: Checkpoint, log_signer: FileSigner) -> bytes:
    return sign_checkpoint(checkpoint, log_signer, name=ORIGIN)


# -- keys and signed notes ----------------------------------------------------------------------


def test_go_signing_vector_is_reproduced_byte_for_byte() -> None:
    seed = base64.b64decode(GO_SEED)
    signer = FileSigner(Ed25519PrivateKey.from_private_bytes(seed[1:]))
    key = LogKey.for_signer(signer, name="PeterNeumann")
    assert key.key_id.hex() == "c74f20a3"
    assert key.vkey == GO_VKEY
    assert sign_note(GO_TEXT, signer, name="PeterNeumann") == GO_TEXT + b"\n" + PETER_LINE


def test_go_and_spec_notes_open_and_unknown_signers_are_ignored() -> None:
    peter, enoch = LogKey.from_vkey(GO_VKEY), LogKey.from_vkey(ENOCH_VKEY)
    both = GO_TEXT + b"\n" + PETER_LINE + ENOCH_LINE
    assert open_note(both, peter) == GO_TEXT  # EnochRoot is unknown to this caller: ignored
    assert open_note(both, enoch) == GO_TEXT
    spec = LogKey.from_vkey(SPEC_VKEY, source="spec")
    assert spec.key_id.hex() == "530d903a"
    assert spec.vkey == SPEC_VKEY
    assert open_note(SPEC_NOTE, spec) == b"This is an example message.\n"
    with pytest.raises(CheckpointError, match=r"no signature by PeterNeumann \(key ID c74f20a3\)"):
        open_note(SPEC_NOTE, peter)


def test_go_open_vector_rejects_a_bad_signature_and_malformed_notes() -> None:
    peter = LogKey.from_vkey(GO_VKEY)
    bad = PETER_LINE[:60] + b"ABCD" + PETER_LINE[60:]  # TestOpen "Invalid signature"
    with pytest.raises(CheckpointError, match=r"bad signature by PeterNeumann"):
        open_note(GO_TEXT + b"\n" + bad, peter)
    malformed = {  # TestOpen "Invalid encoded message syntax" and "too many signatures"
        GO_TEXT: r"no blank line",
        GO_TEXT + b"\n": r"no signature lines",
        GO_TEXT + b"\n" + PETER_LINE[:-1]: r"does not end with a newline",
        b"\x01" + GO_TEXT + b"\n" + PETER_LINE: r"control character",
        b"\xff" + GO_TEXT + b"\n" + PETER_LINE: r"not valid UTF-8",
        GO_TEXT + b"\n" + PETER_LINE.replace(b"PeterNeumann", b"Bad Name"): r"not base64",
        GO_TEXT + b"\n" + PETER_LINE + b"Unexpected line.\n": r"does not start with an em dash",
        GO_TEXT + b"\n" + PETER_LINE * 101: r"101 signature lines, more than the 100",
    }
    for text, message in malformed.items():
        with pytest.raises(NoteFormatError, match=message):
            open_note(text, peter, source="go-vector")


def test_a_witness_key_id_uses_signature_type_4() -> None:
    witness = WitnessKey.from_vkey(WITNESS_VKEY)  # checks the published key ID da77ade7
    assert witness.key_id.hex() == "da77ade7"
    assert witness.vkey == WITNESS_VKEY
    as_log_key = LogKey(witness.name, witness.public_key)
    assert as_log_key.key_id != witness.key_id
    assert len({as_log_key, witness}) == 2  # same name and key, other signature type
    with pytest.raises(NoteFormatError, match=r"is not a log key \(signature type 0x01"):
        LogKey.from_vkey(WITNESS_VKEY)
    with pytest.raises(NoteFormatError, match=r"is not a witness key \(signature type 0x04"):
        WitnessKey.from_vkey(GO_VKEY)


def test_a_verifier_key_whose_base64_contains_a_plus_parses() -> None:
    key = LogKey.from_vkey(PLUS_VKEY)
    assert (key.name, key.key_id.hex(), key.vkey) == ("TEST", "7997405c", PLUS_VKEY)


def test_keys_round_trip_and_compare_by_name_and_key(log_key: LogKey) -> None:
    again = LogKey.from_vkey(log_key.vkey + "\n", source="log.vkey")
    assert again == log_key
    assert hash(again) == hash(log_key)
    assert len({again, log_key}) == 1
    assert LogKey("other", log_key.public_key) != log_key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PeterNeumann+c74f20a3", r"is not of the form <name>\+<key id>\+<base64 key>"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", r"space"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", r"empty key name"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", r"not 8 hex"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", r"not valid base64"),
        (
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy",
            r"32-byte Ed25519 key\): it has type 0x01 and 29 bytes",
        ),
        ("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", r"does not match"),
        ("PeterNeumann+c74f20a3+AhpclQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", r"type 0x02"),
    ],
)
def test_malformed_verifier_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(NoteFormatError, match=message) as caught:
        LogKey.from_vkey(text, source="keys.txt")
    assert "keys.txt" in caught.value.message


def test_only_ed25519_signers_sign_notes(checkpoint: Checkpoint) -> None:
    p256 = FileSigner(generate_private_key(KeyType.P256), source="p256.key")
    with pytest.raises(InputError, match=r"file:p256.key holds a p256 key, but a log key must be"):
        sign_checkpoint(checkpoint, p256, name=ORIGIN)
    with pytest.raises(InputError, match=r"a witness key must be Ed25519"):
        cosign(checkpoint, p256, name="w", at=AT)
    with pytest.raises(InputError, match=r"needs an Ed25519 public key"):
        LogKey("log", p256.public_key)  # type: ignore[arg-type]


# -- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_body_is_the_c2sp_format(checkpoint: Checkpoint) -> None:
    root = base64.b64encode(checkpoint.root).decode()
    assert checkpoint.body() == f"{ORIGIN}\n40\n{root}\n".encode()
    with_extensions = Checkpoint(ORIGIN, 40, checkpoint.root, ("ext one", "ext two"))
    assert with_extensions.body() == f"{ORIGIN}\n40\n{root}\next one\next two\n".encode()
    assert Checkpoint.parse(with_extensions.body()) == with_extensions
    empty = Checkpoint("log", 0, hashlib.sha256(b"").digest())
    assert empty.body() == b"log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ORIGIN}\n05\n{ROOT}\n", r"tree size '05' is not a decimal number without leading"),
        (f"{ORIGIN}\n-1\n{ROOT}\n", r"tree size '-1'"),
        (f"{ORIGIN}\n+5\n{ROOT}\n", r"tree size '\+5'"),
        (f"{ORIGIN}\n 5\n{ROOT}\n", r"tree size ' 5'"),
        (f"{ORIGIN}\n\u0665\n{ROOT}\n", r"tree size"),  # an Arabic-Indic digit five
        (f"{ORIGIN}\n{1 << 64}\n{ROOT}\n", r"not an integer from 0 to 2\*\*64-1"),
        (f"{ORIGIN}\n5\n{base64.b64encode(bytes(31)).decode()}\n", r"31 bytes, not a 32-byte"),
        (f"{ORIGIN}\n5\n{ROOT[:-1]}\n", r"not valid base64"),
        (f"{ORIGIN}\n5\n{ROOT[:-2]}B=\n", r"not canonical base64"),
        (f"\n5\n{ROOT}\n", r"empty origin"),
        (f"{ORIGIN}\n5\n{ROOT}", r"does not end with a newline"),
        (f"{ORIGIN}\n5\n", r"has 2 lines; it needs the origin, the tree size and the root"),
        (f"{ORIGIN}\n5\n{ROOT}\next\n\nmore\n", r"extension line 5 is empty"),
        (f"{ORIGIN}\n5\n{ROOT}\next\tab\n", r"extension line 4 contains"),
    ],
)
def test_checkpoint_parsing_is_strict(body: str, message: str) -> None:
    with pytest.raises(NoteFormatError, match=message) as caught:
        Checkpoint.parse(body.encode(), source="https://log.example/checkpoint")
    assert "https://log.example/checkpoint" in caught.value.message


def test_checkpoint_values_are_checked_on_construction() -> None:
    with pytest.raises(NoteFormatError, match=r"root hash is 3 bytes"):
        Checkpoint(ORIGIN, 1, b"abc")
    with pytest.raises(NoteFormatError, match=r"tree size -1"):
        Checkpoint(ORIGIN, -1, bytes(32))
    with pytest.raises(NoteFormatError, match=r"contains a newline"):
        Checkpoint("a\nb", 1, bytes(32))


def test_sign_and_open_round_trip(note: bytes, checkpoint: Checkpoint, log_key: LogKey) -> None:
    body, _, line = note.partition(b"\n\n")
    assert body + b"\n" == checkpoint.body()
    assert line.startswith(f"{DASH} {ORIGIN} ".encode())
    decoded = base64.b64decode(line.split(b" ")[-1])
    assert decoded[:4] == log_key.key_id
    log_key.public_key.verify(decoded[4:], checkpoint.body())
    opened = open_checkpoint(note, log_key, origin=ORIGIN, source="test")
    assert opened == SignedCheckpoint(checkpoint, note, (ORIGIN,), ())


def test_a_changed_checkpoint_fails_its_signature(note: bytes, log_key: LogKey) -> None:
    changed = note.replace(b"\n40\n", b"\n41\n", 1)
    with pytest.raises(CheckpointError, match=r"checkpoint in cp.txt: bad signature by"):
        open_checkpoint(changed, log_key, source="cp.txt")


def test_a_checkpoint_signed_only_by_unknown_keys_fails(
    checkpoint: Checkpoint, log_key: LogKey
) -> None:
    other = sign_checkpoint(checkpoint, _signer("impostor"), name=ORIGIN)  # same name, other key
    with pytest.raises(CheckpointError, match=r"no signature by ledger.trustbridge.example/log"):
        open_checkpoint(other, log_key)


def test_lines_sharing_only_the_name_or_only_the_key_id_are_ignored(
    note: bytes, checkpoint: Checkpoint, log_key: LogKey
) -> None:
    impostor = sign_checkpoint(checkpoint, _signer("impostor"), name=ORIGIN)  # same name
    renamed = note.replace(f"{DASH} {ORIGIN} ".encode(), f"{DASH} other.example ".encode())
    same_id = renamed.split(b"\n\n")[1]  # the log's key ID and signature under another name
    crowded = add_signatures(note, [impostor.split(b"\n\n")[1].decode(), same_id.decode()])
    assert open_checkpoint(crowded, log_key).checkpoint == checkpoint


def test_sign_note_refuses_text_that_is_not_a_note_text(log_signer: FileSigner) -> None:
    with pytest.raises(NoteFormatError, match=r"must end with a newline"):
        sign_note(b"no newline", log_signer, name=ORIGIN)
    with pytest.raises(NoteFormatError, match=r"no control characters"):
        sign_note(b"bell\a\n", log_signer, name=ORIGIN)
    with pytest.raises(NoteFormatError, match=r"not valid UTF-8"):
        sign_note(b"\xff\n", log_signer, name=ORIGIN)
    with pytest.raises(NoteFormatError, match=r"key name 'a b' contains a space"):
        sign_note(b"text\n", log_signer, name="a b")
    with pytest.raises(NoteFormatError, match=r"not a str"):
        Checkpoint(ORIGIN, 1, bytes(32), "ext")  # type: ignore[arg-type]


def test_a_checkpoint_of_another_log_fails(note: bytes, log_key: LogKey) -> None:
    with pytest.raises(CheckpointError, match=r"is for the log '.*/log', not 'other.example/log'"):
        open_checkpoint(note, log_key, origin="other.example/log")


def test_malformed_signature_lines_fail(note: bytes, log_key: LogKey) -> None:
    hyphen = note.replace(DASH.encode(), b"-")
    with pytest.raises(NoteFormatError, match=r"does not start with an em dash \(U\+2014\)"):
        open_checkpoint(hyphen, log_key)
    no_space = note.replace(f"{DASH} ".encode(), DASH.encode())
    with pytest.raises(NoteFormatError, match=r"does not start with an em dash"):
        open_checkpoint(no_space, log_key)
    only_name = note[: note.rindex(b" ")] + b"\n"
    with pytest.raises(NoteFormatError, match=r"no space between the key name and"):
        open_checkpoint(only_name, log_key)
    short = note[: note.rindex(b" ")] + b" AAAA\n"
    with pytest.raises(NoteFormatError, match=r"not base64 of a key ID and a signature"):
        open_checkpoint(short, log_key)
    with pytest.raises(NoteFormatError, match=r"more than the 65536 we read"):
        open_checkpoint(note + b"x" * MAX_NOTE_SIZE, log_key)
    with pytest.raises(NoteFormatError, match=r"is str, not bytes"):
        open_checkpoint(note.decode(), log_key)  # type: ignore[arg-type]


def test_up_to_the_signature_limit_is_read(note: bytes, log_key: LogKey) -> None:
    unknown = f"{DASH} someone.example {base64.b64encode(bytes(68)).decode()}\n".encode()
    crowded = note + unknown * (MAX_SIGNATURES - 1)
    assert open_checkpoint(crowded, log_key).signers == (ORIGIN,)
    with pytest.raises(NoteFormatError, match=r"101 signature lines"):
        open_checkpoint(crowded + unknown, log_key)


def test_a_checkpoint_body_that_is_not_a_checkpoint_fails(
    log_signer: FileSigner, log_key: LogKey
) -> None:
    note = sign_note(b"hello\n", log_signer, name=ORIGIN)
    assert open_note(note, log_key) == b"hello\n"
    with pytest.raises(NoteFormatError, match=r"checkpoint in n.txt has 1 lines"):
        open_checkpoint(note, log_key, source="n.txt")


# -- cosignatures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cosigned(
    note: bytes, witness_signers: list[FileSigner], witness_keys: list[WitnessKey]
) -> bytes:
    lines = [
        cosign(note, signer, name=key.name, at=AT + timedelta(seconds=number))
        for number, (signer, key) in enumerate(zip(witness_signers, witness_keys, strict=True))
    ]
    return add_signatures(note, lines)


def test_cosignature_round_trip(
    cosigned: bytes, checkpoint: Checkpoint, log_key: LogKey, witness_keys: list[WitnessKey]
) -> None:
    opened = open_checkpoint(cosigned, log_key, witnesses=witness_keys)
    assert opened.checkpoint == checkpoint
    assert opened.note == cosigned
    assert opened.signers == (ORIGIN, "witness1.example", "witness2.example")
    assert opened.cosignatures == (
        Cosignature("witness1.example", AT),
        Cosignature("witness2.example", AT + timedelta(seconds=1)),
    )
    assert opened.cosignatures[0].time.tzinfo is UTC
    # Only the witnesses a client knows count; the others are ignored.
    assert open_checkpoint(cosigned, log_key, witnesses=witness_keys[1:]).signers == (
        ORIGIN,
        "witness2.example",
    )
    assert open_checkpoint(cosigned, log_key).cosignatures == ()


def test_cosignature_bytes_follow_tlog_cosignature(
    note: bytes, checkpoint: Checkpoint, witness_signers: list[FileSigner]
) -> None:
    """keyid || u64 big-endian time || Ed25519 over "cosignature/v1\\ntime <t>\\n" + body."""
    signer = witness_signers[0]
    line = cosign(checkpoint, signer, name="w.example", at=AT.replace(microsecond=999_999))
    assert line == cosign(note, signer, name="w.example", at=AT)  # sub-seconds are dropped
    name, encoded = line.removeprefix(f"{DASH} ").split(" ")
    assert name == "w.example"
    raw = base64.b64decode(encoded)
    assert len(raw) == 4 + 8 + 64
    public = signer.key.public_key()
    assert isinstance(public, Ed25519PublicKey)
    expected_id = hashlib.sha256(b"w.example\n\x04" + public.public_bytes_raw()).digest()[:4]
    assert raw[:4] == expected_id
    assert int.from_bytes(raw[4:12], "big") == int(AT.timestamp()) == 1741964966
    message = b"cosignature/v1\ntime 1741964966\n" + checkpoint.body()
    public.verify(raw[12:], message)


def test_a_tampered_cosignature_fails(
    cosigned: bytes, log_key: LogKey, witness_keys: list[WitnessKey]
) -> None:
    lines = cosigned.decode().split("\n")
    name, encoded = lines[-2].removeprefix(f"{DASH} ").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[11] ^= 1  # the time
    lines[-2] = f"{DASH} {name} {base64.b64encode(bytes(raw)).decode()}"
    tampered = "\n".join(lines).encode()
    with pytest.raises(CheckpointError, match=r"bad cosignature by witness2.example"):
        open_checkpoint(tampered, log_key, witnesses=witness_keys)
    # Unknown to a client that does not trust witness2: ignored.
    assert open_checkpoint(tampered, log_key, witnesses=witness_keys[:1]).signers[-1] == (
        "witness1.example"
    )


def test_a_cosignature_of_another_checkpoint_fails(
    note: bytes,
    tree: MerkleTree,
    log_signer: FileSigner,
    log_key: LogKey,
    witness_signers: list[FileSigner],
    witness_keys: list[WitnessKey],
) -> None:
    older = Checkpoint(ORIGIN, 39, tree.root(39))
    line = cosign(older, witness_signers[0], name=witness_keys[0].name, at=AT)
    moved = add_signatures(note, [line])
    with pytest.raises(CheckpointError, match=r"bad cosignature by witness1.example"):
        open_checkpoint(moved, log_key, witnesses=witness_keys)
    truncated = add_signatures(note, [line[:-8] + "AAAA"])  # 75 bytes
    with pytest.raises(CheckpointError, match=r"not a timestamped Ed25519 signature"):
        open_checkpoint(truncated, log_key, witnesses=witness_keys)


def test_add_signatures_checks_lines_and_skips_repeats(
    note: bytes, witness_signers: list[FileSigner]
) -> None:
    line = cosign(note, witness_signers[0], name="w.example", at=AT)
    once = add_signatures(note, [line + "\n"])
    assert once == note + line.encode() + b"\n"
    assert add_signatures(once, [line]) == once
    with pytest.raises(NoteFormatError, match=r"does not start with an em dash"):
        add_signatures(note, ["- w.example AAAAAAAA"])
    with pytest.raises(NoteFormatError, match=r"contains a newline"):
        add_signatures(note, [line + "\n" + line])
    with pytest.raises(NoteFormatError, match=r"no blank line"):
        add_signatures(b"not a note\n", [line])


def test_cosign_needs_an_aware_time_after_1970(
    checkpoint: Checkpoint, witness_signers: list[FileSigner]
) -> None:
    with pytest.raises(InputError, match=r"not a timezone-aware datetime"):
        cosign(checkpoint, witness_signers[0], name="w", at=datetime(2025, 1, 1))
    with pytest.raises(InputError, match=r"before 1970"):
        cosign(checkpoint, witness_signers[0], name="w", at=datetime(1969, 1, 1, tzinfo=UTC))


# -- monitoring ---------------------------------------------------------------------------------


def test_check_update_accepts_a_log_that_grew(tree: MerkleTree) -> None:
    seen = Checkpoint(ORIGIN, 25, tree.root(25))
    new = Checkpoint(ORIGIN, 40, tree.root(40))
    check_update(seen, new, tree.consistency_proof(25, 40))
    check_update(None, new, [])  # first contact: trust on first use
    check_update(new, new, [])  # nothing new
    empty = Checkpoint(ORIGIN, 0, MerkleTree().root())
    check_update(empty, new, [])


def test_check_update_detects_a_rollback(tree: MerkleTree) -> None:
    seen = Checkpoint(ORIGIN, 40, tree.root(40))
    older = Checkpoint(ORIGIN, 25, tree.root(25))
    with pytest.raises(
        RollbackError, match=r"rollback: .* tree of size 25 .* after one of size 40"
    ):
        check_update(seen, older, [])


def test_check_update_detects_a_split_view_at_the_same_size(tree: MerkleTree) -> None:
    seen = Checkpoint(ORIGIN, 40, tree.root(40))
    forked = Checkpoint(ORIGIN, 40, tree.root(39))
    with pytest.raises(SplitViewError, match=r"split view: .* two different roots for size 40"):
        check_update(seen, forked, [])
    with pytest.raises(ProofError, match=r"same size 40 must be empty"):
        check_update(seen, seen, tree.consistency_proof(25, 40))


def test_check_update_detects_a_rewritten_history(tree: MerkleTree) -> None:
    seen = Checkpoint(ORIGIN, 25, tree.root(25))
    rewritten = MerkleTree(leaf_hash(b"rewritten %d" % number) for number in range(50))
    new = Checkpoint(ORIGIN, 50, rewritten.root())
    with pytest.raises(SplitViewError, match=r"does not extend the tree of size 25 .* rewrote"):
        check_update(seen, new, rewritten.consistency_proof(25, 50))
    bigger = MerkleTree(tree.leaf(index) for index in range(40))
    bigger.append(leaf_hash(b"one more"))
    grown = Checkpoint(ORIGIN, 41, bigger.root())
    proof = bigger.consistency_proof(25, 41)
    check_update(seen, grown, proof)
    with pytest.raises(SplitViewError, match=r"split view"):
        check_update(seen, grown, proof[:-1])
    with pytest.raises(SplitViewError, match=r"split view"):
        check_update(Checkpoint(ORIGIN, 0, bytes(32)), grown, [])


def test_check_update_refuses_another_log(tree: MerkleTree) -> None:
    seen = Checkpoint(ORIGIN, 25, tree.root(25))
    other = Checkpoint("other.example/log", 40, tree.root(40))
    with pytest.raises(CheckpointError, match=r"of the log 'other.example/log' cannot update"):
        check_update(seen, other, tree.consistency_proof(25, 40))


def test_rollback_and_split_view_are_checkpoint_errors() -> None:
    assert issubclass(RollbackError, CheckpointError)
    assert issubclass(SplitViewError, CheckpointError)
    assert issubclass(NoteFormatError, InputError)
