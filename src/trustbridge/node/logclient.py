"""Talking to other nodes' logs: monitoring them, and asking witnesses to cosign ours."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from trustbridge.errors import InputError, NotFoundError, TrustbridgeError
from trustbridge.home import Home
from trustbridge.home.log import Peer
from trustbridge.ledger.note import (
    LogKey,
    SignedCheckpoint,
    WitnessKey,
    add_signatures,
    open_checkpoint,
)
from trustbridge.node.log import LOG_PREFIX, decode_hashes

__all__ = ["LogClient", "MonitorReport", "monitor", "request_cosignature"]

_TIMEOUT = 30.0


class LogUnreachableError(TrustbridgeError):
    """A log or witness that does not answer, or answers with an error."""


def log_base(url: str) -> str:
    """``https://host:port`` or ``.../log/v1`` -> the log's API base URL."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{url!r} is not an http(s) URL of a node or its log")
    return url if url.endswith(LOG_PREFIX) else url + LOG_PREFIX


class LogClient:
    """The public log API of one node."""

    def __init__(self, url: str, *, client: httpx.Client | None = None) -> None:
        self.base = log_base(url)
        self._client = client or httpx.Client(timeout=_TIMEOUT)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        url = self.base + path
        try:
            response = self._client.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise LogUnreachableError(f"cannot reach {url}: {exc}") from None
        if response.status_code != 200:
            raise LogUnreachableError(
                f"{url} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    def _json(self, path: str, *, limit: int = 1024 * 1024, **params: Any) -> Any:
        """A JSON answer of at most ``limit`` bytes, or a clear error naming the URL."""
        response = self._get(path, **params)
        if len(response.content) > limit:
            raise InputError(f"{self.base}{path} answered {len(response.content)} bytes, too many")
        try:
            return response.json()
        except ValueError:
            raise InputError(f"{self.base}{path} did not answer JSON") from None

    def checkpoint(self) -> bytes:
        return self._get("/checkpoint").content

    def key(self) -> LogKey:
        return LogKey.from_vkey(self._get("/key").text.strip(), source=f"{self.base}/key")

    def consistency(self, first: int, second: int) -> list[bytes]:
        if first in (0, second):
            return []
        body = self._json("/proof/consistency", first=first, second=second)
        proof = body.get("proof") if isinstance(body, dict) else None
        return decode_hashes(proof, f"the consistency proof from {self.base}")

    def receipt(self, index: int) -> Any:
        return self._json(f"/receipt/{index}")

    def statements(self, component: str, *, limit: int) -> list[Any]:
        """A component's statements with their receipts, as the partner's node exports them."""
        body = self._json(f"/provenance/{component}", limit=limit)
        items = body.get("statements") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise InputError(f"{self.base}/provenance/{component} answered no list of statements")
        return items

    def witness(self, note: bytes, old: int, proof: list[bytes]) -> httpx.Response:
        url = self.base + "/witness"
        try:
            return self._client.post(
                url,
                json={
                    "checkpoint": note.decode(),
                    "old": old,
                    "proof": [base64.b64encode(p).decode() for p in proof],
                },
            )
        except httpx.HTTPError as exc:
            raise LogUnreachableError(f"cannot reach {url}: {exc}") from None


@dataclass(frozen=True)
class MonitorReport:
    """What one look at a followed log found (a split view or rollback raises instead)."""

    origin: str
    url: str
    previous: int
    size: int
    root: bytes
    first_contact: bool
    cosigned_by: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "url": self.url,
            "previous_size": self.previous,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "first_contact": self.first_contact,
            "cosigned_by": list(self.cosigned_by),
        }


def monitor(home: Home, url: str, *, key: LogKey | None = None) -> MonitorReport:
    """Fetch a log's checkpoint and check it against the newest one this home saw of it:
    signature, no rollback, and a consistency proof from that size. The first look follows the
    log with ``key`` (or, without one, the key the log serves: trust on first use).
    Raises RollbackError or SplitViewError loudly."""
    with LogClient(url) as client:
        note = client.checkpoint()
        origin = note.split(b"\n", 1)[0].decode(errors="replace")
        first_contact = False
        try:
            peer: Peer = home.log.peer(origin)
        except NotFoundError:
            served = key or client.key()
            if served.name != origin:
                raise InputError(
                    f"the key {served.vkey} is not for log {origin}: its name is {served.name}"
                ) from None
            peer = home.log.follow(served, url=client.base)
            first_contact = True
        signed = open_checkpoint(note, peer.key, origin=origin, source=f"{client.base}/checkpoint")
        size = signed.checkpoint.size
        proof = client.consistency(peer.size, size) if 0 < peer.size < size else []
        previous = peer.size
        _, checked = home.log.observe(note, proof, source=f"{client.base}/checkpoint")
    return MonitorReport(
        origin=origin,
        url=client.base,
        previous=previous,
        size=checked.checkpoint.size,
        root=checked.checkpoint.root,
        first_contact=first_contact,
        cosigned_by=tuple(c.name for c in checked.cosignatures),
    )


def request_cosignature(home: Home, witness_url: str, *, key: LogKey | None = None) -> str:
    """Ask the witness at ``witness_url`` to cosign this log's newest checkpoint; keep and
    return its cosignature line (checked with ``key``, default: the key the witness serves)."""
    log = home.log
    signed = log.checkpoint()
    with LogClient(witness_url) as client:
        witness_key = key or client.key()
        old = 0
        for _ in range(2):  # the second try starts from the size the witness says it saw
            size = signed.checkpoint.size
            proof = log.consistency_proof(old, size) if 0 < old < size else []
            response = client.witness(signed.note, old, proof)
            if response.status_code == 409:
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                seen = answer.get("size") if isinstance(answer, dict) else None
                if not isinstance(seen, int) or seen < 0 or seen > size:
                    raise LogUnreachableError(
                        f"witness {client.base} says it saw size {seen!r}, which this log "
                        f"(size {size}) never had"
                    )
                old = seen
                continue
            if response.status_code != 200:
                raise LogUnreachableError(
                    f"witness {client.base} refused: {response.status_code} {response.text[:300]}"
                )
            line = response.text.strip()
            _check_cosignature(signed, line, witness_key, own=log.key())
            log.add_cosignature(size, witness_key.name, line)
            return line
    raise LogUnreachableError(f"witness {witness_url} did not settle on a size")


def _check_cosignature(signed: SignedCheckpoint, line: str, key: LogKey, *, own: LogKey) -> None:
    witness = WitnessKey(key.name, key.public_key)
    note = add_signatures(signed.note, [line])
    checked = open_checkpoint(note, own, witnesses=[witness], origin=signed.checkpoint.origin)
    if key.name not in {c.name for c in checked.cosignatures}:
        raise InputError(f"the witness's answer is not a cosignature by {key.name}")
