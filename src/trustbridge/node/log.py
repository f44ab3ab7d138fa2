"""The node's transparency log over HTTP (public: anyone may audit a log).

``/log/v1/checkpoint`` is the newest checkpoint as a C2SP signed note (with the witnesses'
cosignatures); ``/log/v1/key`` the log's verifier key; the proofs and entries answer JSON with
hashes in base64. ``POST /log/v1/witness`` is this node acting as a witness for a log it
follows: it checks the checkpoint and the consistency proof from what it saw, then cosigns.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from trustbridge.errors import InputError
from trustbridge.home import Home
from trustbridge.home.log import MAX_ENTRIES_PER_CALL, WitnessConflictError
from trustbridge.node._http import limited_body

__all__ = ["LOG_PREFIX", "log_router"]

LOG_PREFIX = "/log/v1"
#: A witness request: a checkpoint note and a proof of at most 64 hashes.
MAX_WITNESS_BODY = 64 * 1024
_NOTE = "text/plain; charset=utf-8"
#: Anonymous readers of /checkpoint make the log sign at most once a second.
_FRESH = timedelta(seconds=1)
#: Largest index or size a query may name (SQL integers).
_MAX = 2**62


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_hashes(value: Any, what: str) -> list[bytes]:
    """A list of base64 SHA-256 hashes (a proof), refusing anything else."""
    if not isinstance(value, list) or len(value) > 64:
        raise InputError(f"{what} is not a list of at most 64 base64 hashes")
    out = []
    for item in value:
        try:
            digest = base64.b64decode(item, validate=True) if isinstance(item, str) else b""
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32:
            raise InputError(f"{what} holds {item!r}, not a base64 SHA-256 hash")
        out.append(digest)
    return out


def log_router(home: Home) -> APIRouter:
    router = APIRouter(prefix=LOG_PREFIX, tags=["transparency log"])
    log = home.log

    @router.get("/checkpoint", summary="The newest checkpoint (C2SP signed note)")
    def checkpoint() -> Response:
        return PlainTextResponse(
            log.checkpoint(min_interval=_FRESH).note,
            media_type=_NOTE,
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/key", summary="The log's verifier key (C2SP vkey)")
    def key() -> Response:
        return PlainTextResponse(log.key().vkey + "\n", media_type=_NOTE)

    @router.get("/proof/inclusion", summary="Inclusion proof of an entry (RFC 9162 2.1.3)")
    def inclusion(
        index: int = Query(ge=0, le=_MAX),
        size: int | None = Query(default=None, ge=1, le=_MAX),
    ) -> dict[str, Any]:
        size, proof = log.inclusion_proof(index, size)
        return {
            "index": index,
            "size": size,
            "leaf_hash": _b64(log.leaf_hash(index)),
            "proof": [_b64(p) for p in proof],
        }

    @router.get("/proof/consistency", summary="Consistency proof (RFC 9162 2.1.4)")
    def consistency(
        first: int = Query(ge=1, le=_MAX), second: int = Query(ge=1, le=_MAX)
    ) -> dict[str, Any]:
        return {
            "first": first,
            "second": second,
            "proof": [_b64(p) for p in log.consistency_proof(first, second)],
        }

    @router.get("/entries", summary="Entries start..end-1 (at most 1,000), base64")
    def entries(
        start: int = Query(ge=0, le=_MAX), end: int = Query(ge=0, le=_MAX)
    ) -> dict[str, Any]:
        rows = log.entries(start, end)
        return {
            "entries": [{"index": i, "data": _b64(d)} for i, d in rows],
            "limit": MAX_ENTRIES_PER_CALL,
        }

    @router.get("/receipt/{index}", summary="Receipt: entry, checkpoint and inclusion proof")
    def receipt(index: int = Path(ge=0, le=_MAX)) -> dict[str, Any]:
        return log.receipt(index).to_json()

    @router.post("/witness", summary="Witness a followed log's checkpoint: check, then cosign")
    async def witness(request: Request) -> Response:
        raw = await limited_body(request, MAX_WITNESS_BODY)
        try:
            body = json.loads(raw)
        except ValueError:
            raise InputError("the witness request is not JSON") from None
        if not isinstance(body, dict):
            raise InputError("the witness request is not a JSON object")
        note, old = body.get("checkpoint"), body.get("old")
        if not isinstance(note, str) or not isinstance(old, int) or not 0 <= old <= _MAX:
            raise InputError("the witness request needs checkpoint (text) and old (size)")
        try:
            note_bytes = note.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("the checkpoint is not UTF-8 text") from None
        proof = decode_hashes(body.get("proof", []), "proof")
        try:
            line = await asyncio.to_thread(lambda: log.witness(note_bytes, proof, old_size=old))
        except WitnessConflictError as exc:
            return JSONResponse({"error": exc.message, "size": exc.size}, status_code=409)
        return PlainTextResponse(line, media_type=_NOTE)

    return router
