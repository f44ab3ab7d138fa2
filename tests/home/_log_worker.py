"""Appends to a home's log until it is killed; run in a separate process by the crash test.

After each append commits it prints ``ack <index> <leaf hash hex>``; every ``every`` appends it
signs a checkpoint and prints ``checkpoint <size> <root hex>``. A line is printed only after
the database acknowledged the write, so every line the test reads is a promise the log made.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trustbridge.home import Home
from trustbridge.ledger.entries import EntryKind


def main(home_path: str, every: int) -> None:
    home = Home.open(Path(home_path))
    log = home.log
    i = 0
    while True:
        appended = log.append(EntryKind.RECORD, {"n": i, "pad": "x" * 200}, subject=f"n{i}")
        print(f"ack {appended.index} {appended.leaf_hash.hex()}", flush=True)
        i += 1
        if i % every == 0:
            signed = log.checkpoint()
            print(f"checkpoint {signed.checkpoint.size} {signed.checkpoint.root.hex()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
