"""The partner-facing API of a company node: discovery, first-contact sessions, messages.

Every request except discovery is signed with the caller's identity (RFC 9421) and checked in
this order, failing closed at the first check that does not pass:

1. the body is at most :data:`MAX_PARTNER_BODY`;
2. the signature verifies with the first certificate of the ``Trustbridge-Chain`` header, covers
   method, target URI, body digest, chain (and content type), and is fresh;
3. the caller's identity resolves with this node's trust resolver (own scheme, bridge or trust
   lists; revocation required) at or above the node's newcomer level, and is of the right kind
   (an organization identity for session steps, a software or machine identity for messages);
4. its nonce was not seen before.

Every answer is an envelope (:mod:`trustbridge.exchange.protocol`): a JWS signed with this
organization's identity, addressed to the caller (``aud``) and bound to the request (``req``,
the request signature's nonce). Errors are plain JSON with the reason; a caller never acts on
an unsigned answer, so an error can only stop a session, never advance it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from trustbridge.credentials._jose import x5c_encode
from trustbridge.errors import AccessDeniedError, InputError, TrustbridgeError
from trustbridge.exchange.messages import make_receipt, open_message
from trustbridge.exchange.protocol import (
    DISCOVERY_TYPE,
    PROTOCOL,
    RESPONSE_TYPE,
    WELL_KNOWN,
    ExchangeError,
    seal_envelope,
)
from trustbridge.home import Home
from trustbridge.home.exchange import Party
from trustbridge.node._http import limited_body
from trustbridge.node.admin import remember_nonce, signed_caller
from trustbridge.node.httpsig import SignedCaller
from trustbridge.pki.profiles import SubjectKind

__all__ = ["JOSE", "MAX_PARTNER_BODY", "SESSIONS", "MESSAGES", "partner_router"]

JOSE = "application/jose"
#: Largest request accepted (a contract PDF with its validation data stays well below).
MAX_PARTNER_BODY = 16 * 1024 * 1024
SESSIONS = "/api/v1/exchange/sessions"
MESSAGES = "/api/v1/exchange/messages"
_ORGANIZATION = frozenset({SubjectKind.ORGANIZATION})
_SENDERS = frozenset({SubjectKind.SOFTWARE, SubjectKind.MACHINE, SubjectKind.ORGANIZATION})


def describe(home: Home, *, https_url: str) -> dict[str, Any]:
    """This node's description (the body of ``/.well-known/trustbridge``)."""
    exchange = home.exchange
    settings = exchange.settings()
    config = home.config
    policy = exchange.policy()
    _, chain = exchange.identity()
    _, agreement = exchange.agreement()
    tls = exchange.tls_certificate()
    leaf = chain[0]
    countries = leaf.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
    return {
        "protocol": PROTOCOL,
        "node": config.node_name,
        "organization": {
            "identifier": exchange.organization(),
            "name": exchange.organization_name(),
            "country": str(countries[0].value) if countries else None,
        },
        "endpoints": {
            "api": https_url,
            "http": config.base_url,
            "sessions": SESSIONS,
            "messages": MESSAGES,
        },
        "tls": {"sha256": tls.fingerprint(hashes.SHA256()).hex() if tls else None},
        "key_agreement": x5c_encode(agreement),
        "schemes": [s.code for s in home.schemes()],
        "formats": settings.supported(),
        "policies": {
            "min_level": settings.min_level,
            "requirement_policy": {"id": policy.id, "min_level": policy.min_level},
        },
        "log": (
            {"origin": home.log.origin, "vkey": home.log.key().vkey, "url": home.log.url}
            if home.log.has_key
            else None
        ),
    }


def partner_router(home: Home, *, https_url: str) -> APIRouter:
    router = APIRouter(tags=["partner exchange"])
    exchange = home.exchange

    def seal(body: Any, *, typ: str, audience: str | None, request: str | None) -> Response:
        signer, chain = exchange.identity()
        token = seal_envelope(
            body,
            typ=typ,
            issuer=exchange.organization(),
            audience=audience,
            request=request,
            signer=signer,
            chain=chain,
            at=home.now(),
        )
        return Response(token, media_type=JOSE)

    def authenticate(
        request: Request,
        body: bytes,
        kinds: frozenset[SubjectKind],
        cached: bool,
        remember: bool = True,
    ) -> tuple[Party, SignedCaller]:
        signed = signed_caller(home, request, body)
        party, _ = exchange.resolve_party(
            signed.chain,
            kinds=kinds,
            resolver=exchange.resolver(cached=cached),
            what=f"the caller {signed.subject}",
        )
        if remember:  # the message path remembers it with the message, in one transaction
            remember_nonce(home, signed)
        return party, signed

    async def step(request: Request, handler: Callable[[Party, Any], dict[str, Any]]) -> Response:
        body = await limited_body(request, MAX_PARTNER_BODY)

        def work() -> tuple[dict[str, Any], Party, SignedCaller]:
            party, signed = authenticate(request, body, _ORGANIZATION, cached=False)
            try:
                parsed = json.loads(body) if body else {}
            except ValueError:
                raise InputError("the request body is not JSON") from None
            return handler(party, parsed), party, signed

        answer, party, signed = await asyncio.to_thread(work)
        return seal(answer, typ=RESPONSE_TYPE, audience=party.organization, request=signed.nonce)

    @router.get(WELL_KNOWN, summary="This node: organization, endpoints, formats, policies")
    async def well_known(nonce: str = Query(min_length=16, max_length=128)) -> Response:
        body = await asyncio.to_thread(describe, home, https_url=https_url)
        return seal(body, typ=DISCOVERY_TYPE, audience=None, request=nonce)

    @router.post(SESSIONS, summary="hello: open a session, select formats, get a challenge")
    async def hello(request: Request) -> Response:
        return await step(request, exchange.hello)

    @router.post(f"{SESSIONS}/{{session_id}}/presentation", summary="Present our trust profile")
    async def presentation(session_id: str, request: Request) -> Response:
        return await step(request, lambda p, b: exchange.presentation(p, session_id, b))

    @router.post(f"{SESSIONS}/{{session_id}}/profile", summary="Take the partner's profile")
    async def profile(session_id: str, request: Request) -> Response:
        return await step(request, lambda p, b: exchange.profile(p, session_id, b))

    @router.post(f"{SESSIONS}/{{session_id}}/contract", summary="Take a proposed contract")
    async def propose(session_id: str, request: Request) -> Response:
        return await step(request, lambda p, b: exchange.propose(p, session_id, b))

    @router.get(f"{SESSIONS}/{{session_id}}/contract", summary="The contract's state (and PDF)")
    async def contract(session_id: str, request: Request) -> Response:
        return await step(request, lambda p, _b: exchange.contract_state(p, session_id))

    @router.post(f"{SESSIONS}/{{session_id}}/conclude", summary="Take the archived contract")
    async def conclude(session_id: str, request: Request) -> Response:
        return await step(request, lambda p, b: exchange.conclude(p, session_id, b))

    @router.post(MESSAGES, summary="A secure message (JWS in JWE) under a concluded contract")
    async def message(request: Request) -> Response:
        body = await limited_body(request, MAX_PARTNER_BODY)
        # In a worker thread: resolving an identity runs the (async) path validator in a loop
        # of its own.
        return await asyncio.to_thread(_receive, home, request, body, authenticate, seal)

    return router


def _receive(
    home: Home,
    request: Request,
    body: bytes,
    authenticate: Callable[..., tuple[Party, SignedCaller]],
    seal: Callable[..., Response],
) -> Response:
    """Accept or refuse one message; either way store it and answer with a signed receipt."""
    exchange = home.exchange
    party, signed = authenticate(request, body, _SENDERS, cached=True, remember=False)
    at = home.now()
    token = body.decode("ascii", errors="replace").strip()
    key, agreement = exchange.agreement()
    ours = exchange.organization()
    message = open_message(
        token,
        recipient_key=key,
        recipient_certificate=agreement[0],
        audience=ours,
        at=at,
        source=f"message from {party.name}",
    )
    if message.sender != signed.certificate:
        raise ExchangeError(
            "the message is signed by another identity than the request that carried it"
        )
    signer, chain = exchange.identity()
    policies: tuple[str, ...] = ()
    session_id = None
    try:
        session, terms = exchange.concluded(message.contract, message.organization)
        session_id = session.id
        element = terms.element(message.element)
        if element is None:
            raise AccessDeniedError(
                f"the contract {terms.id} does not cover the data element {message.element!r}"
            )
        sender_party = terms.party_of(message.organization)
        if sender_party is None or sender_party.role != element.from_role:
            raise AccessDeniedError(
                f"under contract {terms.id}, {message.element} comes from the "
                f"{element.from_role}, not from {message.organization}"
            )
        if at < terms.valid_from:
            raise AccessDeniedError(
                f"the contract {terms.id} is valid from {terms.valid_from:%Y-%m-%d %H:%M}Z only"
            )
        if message.purpose not in element.purposes:
            raise AccessDeniedError(
                f"the contract {terms.id} does not allow {message.element} for the purpose "
                f"{message.purpose!r} (allowed: {', '.join(element.purposes)})"
            )
        _, resolution = exchange.resolve_party(
            message.sender_chain,
            kinds=_SENDERS,
            resolver=exchange.resolver(cached=True),
            what="the sender",
        )
        decision = exchange.message_decision(
            message,
            sender=message.sender,
            resolution=resolution,
            session=session,
            terms=terms,
            at=at,
        )
        policies = decision.policies
        if not decision.allowed:
            raise AccessDeniedError(f"access policy: {decision.explain()}")
        accepted, reason = (
            True,
            f"accepted under contract {terms.id}: " + "; ".join(decision.reasons),
        )
    except TrustbridgeError as exc:
        accepted, reason = False, exc.message
    receipt = make_receipt(
        message,
        message_id=message.id,
        token_digest=message.token_digest,
        accepted=accepted,
        reason=reason,
        policies=policies,
        signer=signer,
        chain=chain,
        at=at,
        receiver=ours,
    )
    exchange.record_message(
        message_id=message.id,
        direction="in",
        receiver_org=ours,
        accepted=accepted,
        reason=reason,
        token=token,
        token_digest=message.token_digest,
        policies=policies,
        message=message,
        session_id=session_id,
        receipt=receipt,
        nonce=(signed.key_id, signed.nonce, signed.expires),
    )
    if not accepted:
        return JSONResponse(
            {"error": reason, "hint": "see the receipt", "receipt": receipt}, status_code=403
        )
    return seal(
        {"receipt": receipt, "accepted": True},
        typ=RESPONSE_TYPE,
        audience=party.organization,
        request=signed.nonce,
    )
