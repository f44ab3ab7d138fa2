"""The node's transparency log in its database: appends, checkpoints, proofs, peers, and
durability across a kill -9 during appends, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.home.conftest import Reference
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.ledger.entries import EntryKind, LogEntry
from trustbridge.ledger.errors import LedgerError, RollbackError, SplitViewError
from trustbridge.ledger.merkle import verify_consistency, verify_inclusion
from trustbridge.ledger.note import Checkpoint, LogKey, sign_checkpoint
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.revocation import Reason
from trustbridge.pki.signers import FileSigner
from trustbridge.store import tables as t

_PASSPHRASE = "log-test-passphrase"


@pytest.fixture(autouse=True)
def _log_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTBRIDGE_PASSPHRASE_LOG", _PASSPHRASE)


def _home(path: Path, url: str | None = None, *, port: int = 8080) -> Home:
    home = Home.init(path, node_name=path.name, http_port=port, database_url=url)
    home.log.create_key(secret=SecretSource())
    return home


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = _home(tmp_path / "node")
    yield h
    h.close()


def test_appends_checkpoints_and_receipts_verify(home: Home) -> None:
    log = home.log
    first = log.append(EntryKind.RECORD, {"text": "one"}, subject="a")
    log.append_many([(EntryKind.RECORD, {"text": str(i)}, None) for i in range(6)])
    assert first.index == 0 and log.size == 7
    signed = log.checkpoint()
    assert signed.checkpoint.size == 7 and signed.checkpoint.origin == log.origin
    receipt = log.receipt(3)
    checked, entry = receipt.verify(log.key())
    assert entry.kind is EntryKind.RECORD and entry.body == {"text": "2"}
    assert checked.checkpoint.root == log.root()
    # the proofs the service hands out verify against the roots it signs
    size, proof = log.inclusion_proof(0, 5)
    verify_inclusion(first.leaf_hash, 0, size, proof, log.root(5))
    verify_consistency(2, 7, log.root(2), log.root(7), log.consistency_proof(2, 7))
    audit = log.verify()
    assert audit.size == 7 and audit.checkpoints == 1


def test_an_append_in_a_rolled_back_transaction_leaves_no_trace(home: Home) -> None:
    log = home.log
    log.append(EntryKind.RECORD, {"text": "kept"})

    def failing_event() -> None:
        with home._tx() as conn:
            log.append(EntryKind.RECORD, {"text": "rolled back"}, conn=conn)
            raise RuntimeError("the event failed")

    with pytest.raises(RuntimeError):
        failing_event()
    assert log.size == 1
    assert LogEntry.from_bytes(log.entry(0)).body == {"text": "kept"}
    assert log.append(EntryKind.RECORD, {"text": "next"}).index == 1


def test_a_changed_entry_is_found_and_no_checkpoint_is_signed_over_it(home: Home) -> None:
    log = home.log
    for i in range(4):
        log.append(EntryKind.RECORD, {"i": i})
    log.checkpoint()
    with home._tx() as conn:
        conn.execute(
            update(t.log_entries).where(t.log_entries.c.idx == 2).values(data=b'{"forged":1}')
        )
    with pytest.raises(LedgerError, match="entry 2's bytes do not hash"):
        log.verify()


def test_issuing_and_revoking_are_logged(ref: Reference) -> None:
    """Issuance and revocation are entries, appended in the transactions that record them."""
    home = ref.home
    assert ref.officer.certificate is not None
    serial = format(ref.officer.certificate.serial_number, "x")

    def entries() -> list[LogEntry]:
        return [LogEntry.from_bytes(d) for _, d in home.log.entries(0, home.log.size)]

    issued = [e for e in entries() if e.kind is EntryKind.CERTIFICATE_ISSUED]
    assert serial in {e.body["serial"] for e in issued}
    assert {e.body["kind"] for e in issued} >= {"ca", "person"}
    home.status.revoke(serial, reason=Reason.KEY_COMPROMISE)
    status = [e for e in entries() if e.kind is EntryKind.CERTIFICATE_STATUS]
    assert [(e.body["serial"], e.body["status"], e.body["reason"]) for e in status] == [
        (serial, "revoked", "key-compromise")
    ]


def _peer_pair(tmp_path: Path) -> tuple[Home, Home]:
    return _home(tmp_path / "log", port=8101), _home(tmp_path / "witness", port=8102)


def test_a_witness_cosigns_only_consistent_growth(tmp_path: Path) -> None:
    log_home, witness = _peer_pair(tmp_path)
    try:
        log = log_home.log
        witness.log.follow(log.key(), url="http://127.0.0.1:8101/log/v1")
        for i in range(3):
            log.append(EntryKind.RECORD, {"i": i})
        first = log.checkpoint()
        line = witness.log.witness(first.note, [], old_size=0)
        log.add_cosignature(first.checkpoint.size, witness.log.origin, line)
        from trustbridge.ledger.note import WitnessKey, open_checkpoint

        wkey = WitnessKey(witness.log.origin, witness.log.key().public_key)
        cosigned = open_checkpoint(log.checkpoint().note, log.key(), witnesses=[wkey])
        assert [c.name for c in cosigned.cosignatures] == [witness.log.origin]
        for i in range(3, 8):
            log.append(EntryKind.RECORD, {"i": i})
        second = log.checkpoint()
        witness.log.witness(second.note, log.consistency_proof(3, 8), old_size=3)
        assert witness.log.peer(log.origin).size == 8
        # a forked log: same origin and key, other entries, a bigger tree
        forged = _forged_checkpoint(log_home, size=9)
        with pytest.raises(SplitViewError):
            witness.log.observe(forged, log.consistency_proof(8, 8) or [b"\0" * 32])
        # a rollback: a smaller tree than seen
        with pytest.raises(RollbackError):
            witness.log.observe(first.note, [])
    finally:
        log_home.close()
        witness.close()


def _forged_checkpoint(home: Home, *, size: int) -> bytes:
    from trustbridge.ledger.merkle import MerkleTree, leaf_hash

    tree = MerkleTree(leaf_hash(str(i).encode()) for i in range(size))
    return sign_checkpoint(
        Checkpoint(home.log.origin, size, tree.root()), home.log._signing(), name=home.log.origin
    )


def test_a_peer_key_never_changes(tmp_path: Path) -> None:
    log_home, witness = _peer_pair(tmp_path)
    try:
        witness.log.follow(log_home.log.key())
        other = FileSigner(generate_private_key(KeyType.ED25519))
        impostor = LogKey.for_signer(other, name=log_home.log.origin)
        with pytest.raises(LedgerError, match="is followed with key"):
            witness.log.follow(impostor)
    finally:
        log_home.close()
        witness.close()


# -- durability ---------------------------------------------------------------------------------


def _crash_during_appends(home_path: Path, *, acks_before_kill: int) -> list[str]:
    env = {**os.environ, "TRUSTBRIDGE_PASSPHRASE_LOG": _PASSPHRASE}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.home._log_worker", str(home_path), "7"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines: list[str] = []
    assert worker.stdout is not None
    try:
        while sum(1 for line in lines if line.startswith("ack")) < acks_before_kill:
            line = worker.stdout.readline()
            if not line:
                raise AssertionError(f"the worker stopped early: {lines[-3:]}")
            lines.append(line.strip())
        worker.send_signal(signal.SIGKILL)  # in the middle of its next append
        worker.wait(timeout=30)
        lines += [line.strip() for line in worker.stdout.read().splitlines() if line.strip()]
    finally:
        if worker.poll() is None:
            worker.kill()
    return lines


def _check_after_crash(home_path: Path, lines: list[str]) -> None:
    acks = [line.split() for line in lines if line.startswith("ack")]
    checkpoints = [line.split() for line in lines if line.startswith("checkpoint")]
    assert len(acks) >= 50 and checkpoints
    home = Home.open(home_path)
    try:
        log = home.log
        audit = log.verify()  # every signed checkpoint is the root of the stored tree
        assert audit.size >= len(acks)
        for _, index, digest in acks:  # no acknowledged entry is lost or changed
            assert log.leaf_hash(int(index)).hex() == digest
        for _, size, root in checkpoints:
            assert log.root(int(size)).hex() == root
        # the reopened log goes on: a new checkpoint extends the last one signed
        last = log.latest()
        assert last is not None
        log.append(EntryKind.RECORD, {"after": "crash"})
        new = log.checkpoint()
        verify_consistency(
            last.checkpoint.size,
            new.checkpoint.size,
            last.checkpoint.root,
            new.checkpoint.root,
            log.consistency_proof(last.checkpoint.size, new.checkpoint.size),
        )
    finally:
        home.close()


def test_no_acknowledged_entry_is_lost_after_kill_9_on_sqlite(tmp_path: Path) -> None:
    home = _home(tmp_path / "crash")
    home.close()
    lines = _crash_during_appends(tmp_path / "crash", acks_before_kill=120)
    _check_after_crash(tmp_path / "crash", lines)


@pytest.mark.postgres
def test_no_acknowledged_entry_is_lost_after_kill_9_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    home = _home(tmp_path / "crash", postgres_url)
    home.close()
    lines = _crash_during_appends(tmp_path / "crash", acks_before_kill=120)
    _check_after_crash(tmp_path / "crash", lines)
