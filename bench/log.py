"""The transparency log: durable appends, and inclusion proofs at a million entries.

What is measured (figures beside a baseline measured in the same run):

- ``log-append``: ``home.log.append(EntryKind.RECORD, body)`` one entry per transaction, as the
  node appends an event, with ``home.log.checkpoint()`` (root computed, Ed25519-signed C2SP note
  stored) every ``--every`` entries, on the home's database (SQLite in the home, or a throwaway
  durable PostgreSQL cluster with ``--backend postgresql``). Each append commits before the next
  starts, so every one is durable when it returns. Entries per second.
  Baseline: plain inserts of rows of the same size (the entry's canonical bytes) into a table
  ``bench_plain (id, data)`` of the same database, one ``INSERT`` per transaction, through the
  same path the log's appends take (a transaction of the SQLAlchemy engine, the driver's cursor
  on its connection). Goal of the issue: at least 0.3 of the baseline's rate.
- ``inclusion-proof-1m``: ``MerkleTree.inclusion_proof(index, size)`` on a tree of 1,000,000
  entries at random indexes, in milliseconds per proof. Goal (absolute): under 1 ms.
  Baseline: ``pymerkle.InmemoryTree.prove_inclusion(index, size)`` (an independent RFC 9162
  implementation, its own caching on) over the same leaves, where it fits in the run's time
  (``--pymerkle-size``, default the same 1,000,000).

Run from the project root: ``python -m bench.log`` (``--count``, ``--every``, ``--backend``,
``--no-write``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/log.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert

from bench._common import (
    Record,
    limit_record,
    machine_summary,
    print_table,
    rate_record,
    stopwatch,
    write_results,
)
from bench._homes import POSTGRESQL, SQLITE, database
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.ledger.entries import EntryKind, LogEntry
from trustbridge.ledger.merkle import MerkleTree

_PASSPHRASE_ENV = "TRUSTBRIDGE_PASSPHRASE_LOG"  # noqa: S105 - a variable name


def _body(i: int) -> dict[str, object]:
    # About the size of a certificate-status entry.
    return {"n": i, "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "pad": "x" * 120}


def bench_appends(backend: str, count: int, every: int) -> list[Record]:
    os.environ.setdefault(_PASSPHRASE_ENV, "bench-log-passphrase")
    with database(backend) as url, tempfile.TemporaryDirectory() as tmp:
        if url is False:
            return []
        home = Home.init(
            Path(tmp) / "node",
            node_name="bench",
            database_url=url if isinstance(url, str) else None,
        )
        try:
            home.log.create_key(secret=SecretSource())
            log = home.log
            size = len(LogEntry(EntryKind.RECORD, home.now(), _body(0)).to_bytes())
            plain = Table(
                "bench_plain",
                MetaData(),
                Column("id", Integer, primary_key=True, autoincrement=False),
                Column("data", LargeBinary, nullable=False),
            )
            plain.create(home.engine)
            row = os.urandom(size)
            stmt = insert(plain)
            # warm both paths (connections, statement caches)
            for i in range(20):
                with home.engine.begin() as conn:
                    conn.execute(stmt, {"id": -1 - i, "data": row})
                log.append(EntryKind.RECORD, _body(-1 - i))
            mark = "?" if home.engine.dialect.paramstyle == "qmark" else "%s"
            plain_sql = f"INSERT INTO bench_plain (id, data) VALUES ({mark}, {mark})"  # noqa: S608
            with stopwatch() as base:
                for i in range(count):
                    # The same path the log takes: a transaction of the engine, the driver's
                    # cursor on its connection, one INSERT.
                    with home.engine.begin() as conn:
                        cursor = conn.connection.cursor()
                        cursor.execute(plain_sql, (i, row))
                        cursor.close()
            with stopwatch() as ours:
                for i in range(count):
                    log.append(EntryKind.RECORD, _body(i))
                    if (i + 1) % every == 0:
                        log.checkpoint()
            audit = log.verify()
            assert audit.size == count + 20, audit
        finally:
            home.close()
    name = "postgresql" if backend == POSTGRESQL else "sqlite"
    return [
        rate_record(
            "log-append",
            unit="entries/s",
            ours=count / ours.seconds,
            baseline=count / base.seconds,
            baseline_name=f"INSERT of one {size}-byte row per transaction into bench_plain "
            f"(same {name} database; engine.begin() and the driver's cursor, as the log uses)",
            goal=0.3,
            variant=f"{name}, checkpoint every {every}",
        )
    ]


def bench_proofs(size: int, pymerkle_size: int, calls: int) -> list[Record]:
    rng = random.Random(9162)
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size)]
    started = time.perf_counter()
    tree = MerkleTree()
    tree.extend(leaves)
    built = time.perf_counter() - started
    print(f"  built our tree of {size:,} leaves in {built:.2f} s")
    indexes = [rng.randrange(size) for _ in range(calls)]
    with stopwatch() as ours:
        for index in indexes:
            tree.inclusion_proof(index, size)
    baseline_ms, baseline_name = _pymerkle_proofs(leaves[:pymerkle_size], rng, calls)
    ours_ms = ours.seconds * 1000 / calls
    return [
        limit_record(
            "inclusion-proof-1m",
            unit="ms",
            ours=ours_ms,
            baseline=baseline_ms,
            baseline_name=baseline_name,
            goal=1.0,
            variant=f"{size:,} entries",
        )
    ]


def _pymerkle_proofs(leaves: list[bytes], rng: random.Random, calls: int) -> tuple[float, str]:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    started = time.perf_counter()
    for leaf in leaves:
        tree.append_entry(leaf)
    print(
        f"  built pymerkle's tree of {len(leaves):,} entries in "
        f"{time.perf_counter() - started:.1f} s"
    )
    size = len(leaves)
    sample = [rng.randrange(size) for _ in range(max(10, calls // 10))]
    with stopwatch() as took:
        for index in sample:
            tree.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
    return (
        took.seconds * 1000 / len(sample),
        f"pymerkle.InmemoryTree.prove_inclusion at {size:,} entries",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="appends per variant")
    parser.add_argument("--every", type=int, default=100, help="checkpoint every N entries")
    parser.add_argument("--size", type=int, default=1_000_000, help="tree size for proofs")
    parser.add_argument("--pymerkle-size", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20_000, help="proofs timed")
    parser.add_argument("--backend", choices=[SQLITE, POSTGRESQL, "both"], default="both")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    print(machine_summary())
    records: list[Record] = []
    backends = [SQLITE, POSTGRESQL] if args.backend == "both" else [args.backend]
    for backend in backends:
        records += bench_appends(backend, args.count, args.every)
    records += bench_proofs(args.size, min(args.pymerkle_size, args.size), args.calls)
    print_table(records, title="transparency log")
    if not args.no_write:
        write_results("log", records)


if __name__ == "__main__":
    main()
