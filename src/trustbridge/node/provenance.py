"""Provenance over HTTP: recording statements at the acting organization's node, and fetching
a component's statements with their receipts from a partner's node.

``POST /api/v1/provenance/statements`` takes a signed statement (the DSSE signature is the
authentication: the node logs only statements of its own organization whose signer resolves)
and answers its receipt. ``GET /log/v1/provenance/{component}`` is public, as the log is.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
from fastapi import APIRouter, Request

from trustbridge.errors import InputError
from trustbridge.home import Home
from trustbridge.home.provenance import ProofSource, ProvenanceVerification, Recorded
from trustbridge.node._http import limited_body
from trustbridge.node.logclient import LogClient, LogUnreachableError, monitor
from trustbridge.provenance.statement import SignedStatement

__all__ = [
    "MAX_STATEMENT_BODY",
    "STATEMENTS",
    "import_component",
    "partner_proofs",
    "provenance_router",
    "record_remote",
    "verify_component",
]

STATEMENTS = "/api/v1/provenance/statements"
#: A statement with its chain and details is a few KB.
MAX_STATEMENT_BODY = 256 * 1024
#: A component's statements with their receipts, as a partner answers them.
MAX_CHAIN_BODY = 16 * 1024 * 1024


def _recorded(recorded: Recorded) -> dict[str, Any]:
    return {
        "digest": recorded.digest,
        "index": recorded.index,
        "receipt": recorded.receipt.to_json(),
    }


def provenance_router(home: Home, *, api: bool) -> APIRouter:
    router = APIRouter(tags=["provenance"])

    @router.get("/log/v1/provenance/{component}", summary="A component's statements, receipts")
    def exported(component: str) -> dict[str, Any]:
        return {"component": component, "statements": home.provenance.exported(component)}

    if api:

        @router.post(STATEMENTS, summary="Log a statement of this node's organization")
        async def record(request: Request) -> dict[str, Any]:
            raw = await limited_body(request, MAX_STATEMENT_BODY)
            try:
                data = json.loads(raw)
            except ValueError:
                raise InputError("the statement is not JSON") from None
            statement = SignedStatement.from_json(data, source="the statement")
            recorded = await asyncio.to_thread(home.provenance.record, statement)
            return _recorded(recorded)

    return router


def record_remote(
    url: str,
    statement: SignedStatement,
    *,
    verify: Any = True,
    server_name: str | None = None,
) -> dict[str, Any]:
    """Send a statement to a node's API (HTTPS); returns digest, index and receipt.
    ``server_name``: the name the node's TLS certificate must carry, where the URL has an IP."""
    target = url.rstrip("/") + STATEMENTS
    extensions = {"sni_hostname": server_name} if server_name else None
    try:
        with httpx.Client(verify=verify, timeout=30) as client:
            response = client.post(target, json=statement.to_json(), extensions=extensions)
    except httpx.HTTPError as exc:
        raise LogUnreachableError(f"cannot reach {target}: {exc}") from None
    if response.status_code != 200:
        try:
            reason = response.json().get("error")
        except ValueError:
            reason = response.text[:300]
        raise InputError(f"{target} refused the statement: {reason}")
    data: dict[str, Any] = response.json()
    return data


def partner_proofs(home: Home) -> ProofSource:
    """Consistency proofs from the partner logs this home follows (their recorded URLs)."""

    def proofs(origin: str, first: int, second: int) -> list[bytes]:
        peer = home.log.peer(origin)
        if not peer.url:
            raise LogUnreachableError(f"no URL is known for log {origin}")
        with LogClient(peer.url) as client:
            return client.consistency(first, second)

    return proofs


def _refresh(home: Home, origins: set[str], *, required: bool = True) -> list[str]:
    """Look at the newest checkpoint of each partner log first (a split view raises). Where
    ``required`` is false a log that cannot be reached is skipped (the newest checkpoint seen
    of it stands); the notes say so."""
    notes = []
    for origin in sorted(origins):
        if origin == home.log.origin:
            continue
        peer = home.log.peer(origin)
        try:
            if not peer.url:
                raise LogUnreachableError(f"no URL is known for log {origin}")
            monitor(home, peer.url)
        except LogUnreachableError as exc:
            if required:
                raise
            notes.append(
                f"{origin} not reached ({exc.message}); checked against the newest checkpoint "
                f"seen of it ({peer.size} entries, {peer.updated_at.isoformat()})"
            )
    return notes


def import_component(home: Home, url: str, component: str) -> list[Recorded]:
    """Fetch a component's statements from a partner node (its log URL or node URL) and
    import them: receipts checked against that log's newest checkpoint, chain verified."""
    with LogClient(url) as client:
        items = client.statements(component, limit=MAX_CHAIN_BODY)
        target = f"{client.base}/provenance/{component}"
    origins = {
        i["receipt"]["origin"]
        for i in items
        if isinstance(i, dict)
        and isinstance(i.get("receipt"), dict)
        and isinstance(i["receipt"].get("origin"), str)
    }
    _refresh(home, origins)
    return home.provenance.import_chain(items, proofs=partner_proofs(home), source=target)


def verify_component(home: Home, component: str) -> ProvenanceVerification:
    """Verify a component's chain here, after a look at the partner logs it rests on."""
    origins = {r.log for r in home.provenance.history(component) if r.log}
    notes = _refresh(home, origins, required=False)
    result = home.provenance.verify(component, proofs=partner_proofs(home))
    return replace(result, logs=(*notes, *result.logs))
