"""This node's transparency log (RFC 9162) in its database, and the logs of others it follows.

Every event of consequence (certificates issued and revoked, trust lists, credentials and their
status, contracts, message receipts, provenance statements) is appended in the same transaction
that records the event, so there is no event without its entry and no entry without its event.
Indexes are dense and assigned under one row (``log_state``), so appends from several processes
(the server, a command) serialize in the database. The tree is rebuilt in memory from the stored
leaf hashes and kept in step with the table; checkpoints are signed with the log key (Ed25519)
as C2SP signed notes and kept, so a reopened log is checked against every checkpoint it signed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, Dialect, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from trustbridge.clock import ensure_utc
from trustbridge.errors import (
    ConfigError,
    DuplicateError,
    InputError,
    NotFoundError,
    StoreError,
)
from trustbridge.home.config import SecretSource
from trustbridge.home.delivery import write_private
from trustbridge.home.records import local_principal
from trustbridge.ledger.entries import EntryKind, LogEntry
from trustbridge.ledger.errors import CheckpointError, LedgerError, ProofError, SplitViewError
from trustbridge.ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_consistency
from trustbridge.ledger.note import (
    Checkpoint,
    LogKey,
    SignedCheckpoint,
    add_signatures,
    check_update,
    cosign,
    open_checkpoint,
    sign_checkpoint,
)
from trustbridge.ledger.receipt import Receipt
from trustbridge.pki.keys import (
    KeyType,
    generate_private_key,
    load_private_key_file,
    write_private_key_file,
)
from trustbridge.pki.signers import FileSigner, Signer
from trustbridge.store import tables as t

if TYPE_CHECKING:
    from trustbridge.home.home import Home

__all__ = [
    "Appended",
    "LogAudit",
    "LogService",
    "Peer",
    "WitnessConflictError",
    "certificate_entry",
]

_SLUG = "log"
_KEY_FILE = "keys/log.key.pem"
_VKEY_FILE = "log/vkey"
_BUMP_SQL = "UPDATE log_state SET size = size + {0} WHERE id = 1 RETURNING size"
_INSERT_SQL = (
    "INSERT INTO log_entries (idx, kind, leaf_hash, data, subject, at) "
    "VALUES ({m}, {m}, {m}, {m}, {m}, {m})"
)
#: Most entries one ``entries`` call returns.
MAX_ENTRIES_PER_CALL = 1000


@dataclass(frozen=True)
class Appended:
    """An entry the log holds: once the appending transaction committed, it is durable."""

    index: int
    leaf_hash: bytes
    entry: LogEntry


@dataclass(frozen=True)
class Peer:
    """Another node's log this node follows, and the newest checkpoint it verified of it."""

    origin: str
    key: LogKey
    url: str | None
    size: int
    root: bytes
    note: bytes
    updated_at: datetime
    organization: dict[str, str] | None = None


@dataclass(frozen=True)
class LogAudit:
    """What a full check of the stored log found (it raises on the first inconsistency)."""

    size: int
    root: bytes
    checkpoints: int
    latest: int | None


def certificate_entry(
    certificate: x509.Certificate,
    *,
    ca: str,
    kind: str,
    der: bytes | None = None,
    dn: str | None = None,
) -> dict[str, Any]:
    """The body of a ``certificate.issued`` entry: who, by which CA, and the certificate.

    An issuer that has them passes the certificate's DER encoding (``der``) and the RFC 4514
    form of the subject name it built the certificate with (``dn``, as
    ``certificate.subject.rfc4514_string()`` writes it): decoding the subject of a
    certificate and encoding the certificate again cost more than the rest of the entry. The
    entry is the same either way.
    """
    if der is None:
        der = certificate.public_bytes(Encoding.DER)
    if dn is None:
        dn = certificate.subject.rfc4514_string()
    return {
        "ca": ca,
        "serial": format(certificate.serial_number, "x"),
        "kind": kind,
        "subject": dn,
        "sha256": hashlib.sha256(der).hexdigest(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "certificate": base64.b64encode(der).decode(),
    }


class LogService:
    """The home's log: append, checkpoint, prove; and the peers it monitors or witnesses."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._tree = MerkleTree()
        self._lock = threading.Lock()
        self._signer: Signer | None = None
        self._key: LogKey | None = None

    # -- identity of the log ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The log's name in its checkpoints: where it is served, without the scheme."""
        config = self.home.config
        return f"{config.host}:{config.http_port}/log"

    @property
    def url(self) -> str:
        return f"{self.home.config.base_url}/log/v1"

    def create_key(self, *, secret: SecretSource | None = None) -> LogKey:
        """Make the log's signing key (Ed25519, encrypted with the ``log`` passphrase)."""
        home = self.home
        path = home.path / _KEY_FILE
        if path.exists():
            raise DuplicateError(f"this home has a log key already ({path})")
        if secret is not None and (secret.env or secret.file):
            home.config = home.config.with_secret(_SLUG, secret)
            home.config.save(home.path)
        key = generate_private_key(KeyType.ED25519)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        write_private_key_file(path, key, home._secret(_SLUG))
        log_key = LogKey(self.origin, key.public_key())
        vkey = home.path / _VKEY_FILE
        vkey.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(vkey, log_key.vkey.encode() + b"\n")
        self._signer, self._key = FileSigner(key, _KEY_FILE), log_key
        with home._tx() as conn:
            home._audit(conn, local_principal(), "log.key", "log", self.origin, vkey=log_key.vkey)
        return log_key

    @property
    def has_key(self) -> bool:
        return (self.home.path / _VKEY_FILE).is_file()

    def key(self) -> LogKey:
        """The log's public key (from the home's ``log/vkey``; no passphrase needed)."""
        if self._key is None:
            path = self.home.path / _VKEY_FILE
            if not path.is_file():
                raise ConfigError(
                    "this home has no log key", hint="trustbridge log init creates one"
                )
            self._key = LogKey.from_vkey(path.read_text().strip(), source=str(path))
        return self._key

    def _signing(self) -> Signer:
        if self._signer is None:
            key = load_private_key_file(self.home.path / _KEY_FILE, self.home._secret(_SLUG))
            signer = FileSigner(key, _KEY_FILE)
            public = signer.public_key
            if not isinstance(public, ed25519.Ed25519PublicKey) or public.public_bytes(
                Encoding.Raw, PublicFormat.Raw
            ) != self.key().public_key.public_bytes(Encoding.Raw, PublicFormat.Raw):
                raise ConfigError(f"{_KEY_FILE} does not match the log's public key")
            self._signer = signer
        return self._signer

    # -- appending -------------------------------------------------------------------------

    def append(
        self,
        kind: EntryKind,
        body: dict[str, Any],
        *,
        subject: str | None = None,
        conn: Connection | None = None,
    ) -> Appended:
        """Append one entry; in ``conn``'s transaction where given (durable at its commit)."""
        return self.append_many([(kind, body, subject)], conn=conn)[0]

    def append_many(
        self,
        items: Sequence[tuple[EntryKind, dict[str, Any], str | None]],
        *,
        conn: Connection | None = None,
    ) -> list[Appended]:
        """Append entries in order, in one transaction (the caller's where given)."""
        if not items:
            return []
        if conn is None:
            with self.home._tx() as own:
                return self._insert(own, items)
        return self._insert(conn, items)

    def _insert(
        self,
        conn: Connection,
        items: Sequence[tuple[EntryKind, dict[str, Any], str | None]],
    ) -> list[Appended]:
        # The one row every append updates: dense indexes in commit order, across processes.
        # The driver's cursor on the transaction's own connection: SQLAlchemy's statement
        # handling costs as much as SQLite's commit on this hot path.
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        cursor = conn.connection.cursor()
        try:
            cursor.execute(_BUMP_SQL.format(mark), (len(items),))
            bumped = cursor.fetchone()
            if bumped is None:
                raise StoreError("the log's size row is missing: the database was not migrated")
            size = int(bumped[0])
            first = size - len(items)
            # The time is taken once the index is: a later index never carries an earlier
            # time. An entry that cannot be encoded raises here; the transaction rolls back.
            now = self.home.now()
            entries = [LogEntry(kind, now, body) for kind, body, _ in items]
            # The column type's own conversion (UtcDateTime: naive UTC text on SQLite).
            convert = _time_converter(conn.dialect)
            stamp = convert(now) if convert is not None else now
            rows = []
            appended = []
            for offset, ((kind, _, subject), entry) in enumerate(zip(items, entries, strict=True)):
                raw = entry.to_bytes()
                digest = leaf_hash(raw)
                rows.append(
                    (
                        first + offset,
                        kind.value,
                        digest,
                        raw,
                        subject[:200] if subject else None,
                        stamp,
                    )
                )
                appended.append(Appended(first + offset, digest, entry))
            if len(rows) == 1:
                cursor.execute(_INSERT_SQL.format(m=mark), rows[0])
            else:
                cursor.executemany(_INSERT_SQL.format(m=mark), rows)
        finally:
            cursor.close()
        return appended

    # -- the tree --------------------------------------------------------------------------

    def _sync(self) -> MerkleTree:
        """Bring the in-memory tree up to the committed entries (others may have appended)."""
        with self._lock:
            tree = self._tree
            with self.home.engine.connect() as conn:
                rows = conn.execute(
                    select(t.log_entries.c.idx, t.log_entries.c.leaf_hash)
                    .where(t.log_entries.c.idx >= tree.size)
                    .order_by(t.log_entries.c.idx)
                )
                for idx, digest in rows:
                    if idx != tree.size:  # a gap: an append not yet committed; stop before it
                        break
                    tree.append(bytes(digest))
            return tree

    @property
    def size(self) -> int:
        return self._sync().size

    def root(self, size: int | None = None) -> bytes:
        tree = self._sync()
        with self._lock:
            return tree.root(size)

    def entry(self, index: int) -> bytes:
        with self.home.engine.connect() as conn:
            data = conn.execute(
                select(t.log_entries.c.data).where(t.log_entries.c.idx == index)
            ).scalar_one_or_none()
        if data is None:
            raise NotFoundError(f"the log has no entry {index} (it holds {self.size})")
        return bytes(data)

    def leaf_hash(self, index: int) -> bytes:
        tree = self._sync()
        if not 0 <= index < tree.size:
            raise NotFoundError(f"the log has no entry {index} (it holds {tree.size})")
        with self._lock:
            return tree.leaf(index)

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``start`` (inclusive) to ``end`` (exclusive), at most 1,000 at a time."""
        if start < 0 or end < start:
            raise InputError(f"entries {start}..{end}: give 0 <= start <= end")
        end = min(end, start + MAX_ENTRIES_PER_CALL)
        with self.home.engine.connect() as conn:
            rows = conn.execute(
                select(t.log_entries.c.idx, t.log_entries.c.data)
                .where(t.log_entries.c.idx >= start, t.log_entries.c.idx < end)
                .order_by(t.log_entries.c.idx)
            ).all()
        return [(idx, bytes(data)) for idx, data in rows]

    def inclusion_proof(self, index: int, size: int | None = None) -> tuple[int, list[bytes]]:
        """The proof that entry ``index`` is in the tree of ``size`` (default: the newest
        checkpoint's size); returns that size and the proof."""
        if size is None:
            size = self.checkpoint().checkpoint.size
        tree = self._sync()
        if size > tree.size:
            raise ProofError(f"the log holds {tree.size} entries, not {size}")
        if not 0 <= index < size:
            raise ProofError(f"entry {index} is not in the tree of {size} entries")
        with self._lock:
            return size, tree.inclusion_proof(index, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        tree = self._sync()
        if second > tree.size:
            raise ProofError(f"the log holds {tree.size} entries, not {second}")
        if not 0 < first <= second:
            raise ProofError(
                f"no consistency proof from {first} to {second}: give 0 < first <= second"
            )
        with self._lock:
            return tree.consistency_proof(first, second)

    # -- checkpoints -----------------------------------------------------------------------

    def _stored(self, conn: Connection, size: int | None = None) -> Any:
        query = select(t.log_checkpoints)
        if size is None:
            query = query.order_by(t.log_checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(t.log_checkpoints.c.size == size)
        return conn.execute(query).first()

    def _with_cosignatures(self, conn: Connection, row: Any) -> bytes:
        lines = conn.execute(
            select(t.log_cosignatures.c.line)
            .where(t.log_cosignatures.c.size == row.size)
            .order_by(t.log_cosignatures.c.witness)
        ).scalars()
        note = row.note.encode()
        extra = list(lines)
        return add_signatures(note, extra) if extra else note

    def latest(self) -> SignedCheckpoint | None:
        """The newest checkpoint signed, with the cosignatures gathered for it."""
        with self.home.engine.connect() as conn:
            row = self._stored(conn)
            if row is None:
                return None
            note = self._with_cosignatures(conn, row)
        return open_checkpoint(note, self.key(), origin=self.origin, source="the log's checkpoint")

    def checkpoint(self, *, min_interval: timedelta | None = None) -> SignedCheckpoint:
        """The newest checkpoint, signing a new one first where the tree has grown (but not
        within ``min_interval`` of the last one signed: what anonymous readers get)."""
        tree = self._sync()
        latest = self.latest()
        if latest is not None and latest.checkpoint.size >= tree.size:
            return latest
        if latest is not None and min_interval is not None:
            with self.home.engine.connect() as conn:
                signed_at = conn.execute(
                    select(t.log_checkpoints.c.at).where(
                        t.log_checkpoints.c.size == latest.checkpoint.size
                    )
                ).scalar_one()
            if self.home.now() - ensure_utc(signed_at) < min_interval:
                return latest
        with self._lock:
            size = tree.size
            root = tree.root(size)
            if latest is not None:
                # Never sign a tree that does not extend what was signed before.
                previous = latest.checkpoint
                if tree.root(previous.size) != previous.root:
                    raise CheckpointError(
                        f"the stored entries do not match checkpoint {previous.size} this log "
                        "signed: the database was changed",
                        hint="trustbridge log verify shows where",
                    )
        note = sign_checkpoint(
            Checkpoint(self.origin, size, root), self._signing(), name=self.origin
        )
        try:
            with self.home._tx() as conn:
                conn.execute(
                    insert(t.log_checkpoints),
                    {"size": size, "root": root, "note": note.decode(), "at": self.home.now()},
                )
        except IntegrityError:
            # Another process signed this size first (same size, same root): serve its note.
            signed = self.latest()
            assert signed is not None
            return signed
        return SignedCheckpoint(Checkpoint(self.origin, size, root), note, (self.origin,))

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        with self.home.engine.connect() as conn:
            row = self._stored(conn, size)
            if row is None:
                raise NotFoundError(f"this log signed no checkpoint of size {size}")
            note = self._with_cosignatures(conn, row)
        return open_checkpoint(note, self.key(), origin=self.origin)

    def receipt(self, index: int) -> Receipt:
        """Proof that entry ``index`` is in the log: the entry, a checkpoint covering it
        (signed now if none does yet) and the inclusion proof to that checkpoint."""
        signed = self.checkpoint()
        _, proof = self.inclusion_proof(index, signed.checkpoint.size)
        return Receipt(self.origin, index, self.entry(index), signed.note, tuple(proof))

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        """Keep a witness's cosignature of checkpoint ``size`` (the caller verified it)."""
        with self.home._tx() as conn:
            if self._stored(conn, size) is None:
                raise NotFoundError(f"this log signed no checkpoint of size {size}")
            existing = conn.execute(
                select(t.log_cosignatures.c.line).where(
                    t.log_cosignatures.c.size == size, t.log_cosignatures.c.witness == witness
                )
            ).scalar_one_or_none()
            if existing is None:
                conn.execute(
                    insert(t.log_cosignatures),
                    {"size": size, "witness": witness, "line": line, "at": self.home.now()},
                )

    def verify(self) -> LogAudit:
        """Check the whole stored log: every entry's bytes hash to its leaf, indexes are dense,
        and every checkpoint signed is the root of the tree at its size, with a good signature.
        Raises :class:`~trustbridge.ledger.errors.LedgerError` at the first mismatch."""
        tree = MerkleTree()
        with self.home.engine.connect() as conn:
            state = conn.execute(select(t.log_state.c.size)).scalar_one()
            rows = conn.execute(
                select(t.log_entries.c.idx, t.log_entries.c.leaf_hash, t.log_entries.c.data)
                .order_by(t.log_entries.c.idx)
                .execution_options(yield_per=10_000)
            )
            for idx, digest, data in rows:
                if idx != tree.size:
                    raise LedgerError(f"the log has a gap: entry {tree.size} is missing")
                if leaf_hash(bytes(data)) != bytes(digest):
                    raise LedgerError(f"entry {idx}'s bytes do not hash to its stored leaf hash")
                tree.append(bytes(digest))
            checkpoints = conn.execute(
                select(t.log_checkpoints).order_by(t.log_checkpoints.c.size)
            ).all()
            notes = [(row.size, self._with_cosignatures(conn, row)) for row in checkpoints]
        if state != tree.size:
            raise LedgerError(f"the log's size says {state} but it holds {tree.size} entries")
        key = self.key()
        for size, note in notes:
            signed = open_checkpoint(note, key, origin=self.origin, source=f"checkpoint {size}")
            if signed.checkpoint.size > tree.size:
                raise LedgerError(
                    f"checkpoint {size} covers more entries than the log holds ({tree.size}): "
                    "signed entries were lost"
                )
            if tree.root(signed.checkpoint.size) != signed.checkpoint.root:
                raise LedgerError(
                    f"checkpoint {size}'s root is not the root of the stored tree at that size"
                )
        return LogAudit(
            size=tree.size,
            root=tree.root(),
            checkpoints=len(notes),
            latest=notes[-1][0] if notes else None,
        )

    # -- other logs --------------------------------------------------------------------------

    def follow(
        self,
        key: LogKey,
        *,
        url: str | None = None,
        organization: dict[str, str] | None = None,
    ) -> Peer:
        """Start following another log (its origin is the key's name). Refuses a key change.
        ``organization`` ({"name", "identifier"}): who runs it, as its signed description says."""
        with self.home._tx() as conn:
            row = conn.execute(select(t.log_peers).where(t.log_peers.c.origin == key.name)).first()
            if row is not None:
                if row.vkey != key.vkey:
                    raise CheckpointError(
                        f"log {key.name} is followed with key {row.vkey}, not {key.vkey}",
                        hint="a log's key does not change; if it must, remove the peer first",
                    )
                changes: dict[str, Any] = {}
                if url and row.url != url:
                    changes["url"] = url
                if organization and row.organization != organization:
                    if row.organization:
                        raise CheckpointError(
                            f"log {key.name} is run by {row.organization.get('name')}, not "
                            f"{organization.get('name')}"
                        )
                    changes["organization"] = organization
                if changes:
                    conn.execute(
                        update(t.log_peers)
                        .where(t.log_peers.c.origin == key.name)
                        .values(**changes)
                    )
            else:
                conn.execute(
                    insert(t.log_peers),
                    {
                        "origin": key.name,
                        "vkey": key.vkey,
                        "url": url,
                        "organization": organization,
                        "size": 0,
                        "root": EMPTY_ROOT,
                        "note": "",
                        "updated_at": self.home.now(),
                    },
                )
        return self.peer(key.name)

    def peer(self, origin: str) -> Peer:
        with self.home.engine.connect() as conn:
            row = conn.execute(select(t.log_peers).where(t.log_peers.c.origin == origin)).first()
        if row is None:
            raise NotFoundError(
                f"this node does not follow log {origin}",
                hint="trustbridge log follow URL (or first contact with the partner) adds it",
            )
        return _peer(row)

    def peers(self) -> list[Peer]:
        with self.home.engine.connect() as conn:
            rows = conn.execute(select(t.log_peers).order_by(t.log_peers.c.origin)).all()
        return [_peer(r) for r in rows]

    def observe(
        self, note: bytes, proof: Sequence[bytes], *, source: str = "a checkpoint"
    ) -> tuple[Peer, SignedCheckpoint]:
        """Check a followed log's checkpoint against the newest one seen (signature, no
        rollback, consistency proof from the size seen) and remember it when it is newer.
        Raises RollbackError or SplitViewError loudly."""
        origin = _origin_of(note, source)
        text = _note_text(note, source)
        with self.home._tx() as conn:
            # Take the peer's row first (a write lock on SQLite, a row lock on PostgreSQL):
            # two checkpoints checked at once against the same old size cannot both pass.
            taken = conn.execute(
                update(t.log_peers)
                .where(t.log_peers.c.origin == origin)
                .values(origin=t.log_peers.c.origin)
            )
            if taken.rowcount != 1:
                raise NotFoundError(
                    f"this node does not follow log {origin}",
                    hint="trustbridge log monitor URL (or first contact) follows it",
                )
            row = conn.execute(select(t.log_peers).where(t.log_peers.c.origin == origin)).one()
            peer = _peer(row)
            signed = open_checkpoint(note, peer.key, origin=origin, source=source)
            seen = Checkpoint(origin, peer.size, peer.root) if peer.size else None
            check_update(seen, signed.checkpoint, proof)
            if signed.checkpoint.size > peer.size:
                now = self.home.now()
                conn.execute(
                    update(t.log_peers)
                    .where(t.log_peers.c.origin == origin)
                    .values(
                        size=signed.checkpoint.size,
                        root=signed.checkpoint.root,
                        note=text,
                        updated_at=now,
                    )
                )
                conn.execute(
                    insert(t.log_peer_checkpoints),
                    {
                        "origin": origin,
                        "size": signed.checkpoint.size,
                        "root": signed.checkpoint.root,
                        "note": text,
                        "previous": peer.size,
                        "proof": [base64.b64encode(p).decode() for p in proof],
                        "seen_at": now,
                    },
                )
        return self.peer(origin), signed

    def seen_before(self, origin: str, index: int) -> datetime | None:
        """When this node last saw a checkpoint of ``origin`` that did not yet hold entry
        ``index``: the entry was appended after that (a bound on a partner's clock)."""
        with self.home.engine.connect() as conn:
            value = conn.execute(
                select(func.max(t.log_peer_checkpoints.c.seen_at)).where(
                    t.log_peer_checkpoints.c.origin == origin,
                    t.log_peer_checkpoints.c.size <= index,
                )
            ).scalar_one_or_none()
        return ensure_utc(value) if value is not None else None

    def peer_checkpoint(self, origin: str, size: int) -> tuple[int, bytes] | None:
        """A checkpoint seen of a followed log: (size, root), or None."""
        with self.home.engine.connect() as conn:
            row = conn.execute(
                select(t.log_peer_checkpoints.c.root).where(
                    t.log_peer_checkpoints.c.origin == origin,
                    t.log_peer_checkpoints.c.size == size,
                )
            ).first()
        return None if row is None else (size, bytes(row.root))

    def prove_peer(self, origin: str, size: int, root: bytes) -> bool:
        """Whether the tree (``size``, ``root``) of a followed log is consistent with the
        newest checkpoint seen of it, by the proofs kept from each look at the log: True when
        ``size`` is a checkpoint seen and the chain of proofs from it to the newest holds;
        False when no kept chain starts there. A chain that does not hold raises
        :class:`~trustbridge.ledger.errors.SplitViewError`."""
        with self.home.engine.connect() as conn:
            rows = conn.execute(
                select(t.log_peer_checkpoints)
                .where(
                    t.log_peer_checkpoints.c.origin == origin,
                    t.log_peer_checkpoints.c.size >= size,
                )
                .order_by(t.log_peer_checkpoints.c.size)
            ).all()
        if not rows or rows[0].size != size:
            return False
        if bytes(rows[0].root) != root:
            raise SplitViewError(f"{origin} signed two different trees of {size} entries")
        for before, after in itertools.pairwise(rows):
            if after.previous != before.size:
                return False  # a look whose proof started elsewhere
            proof = [base64.b64decode(p) for p in after.proof]
            try:
                verify_consistency(
                    before.size, after.size, bytes(before.root), bytes(after.root), proof
                )
            except ProofError as exc:
                raise SplitViewError(
                    f"the kept proofs of {origin} do not hold from {before.size} to "
                    f"{after.size}: {exc.message}"
                ) from None
        return True

    def witness(self, note: bytes, proof: Sequence[bytes], *, old_size: int) -> str:
        """Witness a followed log's checkpoint: check it as :meth:`observe` does, then cosign
        it with this node's log key (C2SP tlog-cosignature). ``old_size`` is the size the log
        believes this witness saw; a mismatch raises :class:`WitnessConflictError`."""
        origin = _origin_of(note, "the checkpoint to witness")
        peer = self.peer(origin)
        if old_size != peer.size:
            raise WitnessConflictError(peer.size)
        _, signed = self.observe(note, proof, source=f"the checkpoint of {origin}")
        return cosign(signed.checkpoint, self._signing(), name=self.origin, at=self.home.now())


class WitnessConflictError(InputError):
    """The log's idea of what this witness saw is not what it saw (HTTP 409, with the size)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"this witness saw the tree at size {size}")
        self.size = size


@functools.cache
def _time_converter(dialect: Dialect) -> Callable[[Any], Any] | None:
    """The ``at`` column's bind conversion (UtcDateTime: naive UTC text on SQLite)."""
    return t.log_entries.c.at.type.bind_processor(dialect)


def _note_text(note: bytes, source: str) -> str:
    try:
        return note.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text") from None


def _origin_of(note: bytes, source: str) -> str:
    first = note.split(b"\n", 1)[0]
    try:
        origin = first.decode()
    except UnicodeDecodeError:
        raise InputError(f"{source} is not a checkpoint: its first line is not text") from None
    if not origin:
        raise InputError(f"{source} is not a checkpoint: it names no origin")
    return origin


def _peer(row: Any) -> Peer:
    return Peer(
        origin=row.origin,
        key=LogKey.from_vkey(row.vkey, source=f"the stored key of {row.origin}"),
        url=row.url,
        size=row.size,
        root=bytes(row.root),
        note=row.note.encode(),
        updated_at=row.updated_at,
        organization=row.organization,
    )
