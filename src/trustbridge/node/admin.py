"""The administrative API: issuing, approving, revoking and configuring, by signed requests only.

Every request is signed with the caller's identity (RFC 9421, :mod:`trustbridge.node.httpsig`)
and authenticated in this order, failing closed at the first check that does not pass:

1. the body is at most 64 KiB;
2. the signature verifies with the first certificate of the ``Trustbridge-Chain`` header, covers
   method, target URI, body digest, chain (and content type), is fresh (``created`` at most five
   minutes ago, ``expires`` not passed, lifetime at most five minutes) and carries a nonce;
3. the certificate is an identity this home issued: its path validates to the home's anchors and
   its status in the database is good (a revocation takes effect on the next request);
4. it carries a role the operation needs (operator or registration officer; 403 otherwise);
5. its nonce was not seen before, on this node or any other node on the same database.

Only then is the body parsed. The caller becomes the actor of the audit trail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from pydantic import ValidationError as SchemaError
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from trustbridge.errors import (
    AccessDeniedError,
    AuthenticationError,
    InputError,
    ValidationError,
)
from trustbridge.home import Home
from trustbridge.home.records import CertificateInfo, Issued, RequestInfo
from trustbridge.node._http import limited_body
from trustbridge.node.httpsig import CHAIN_HEADER, SIGNATURE_TAG, SignedCaller, verify_request
from trustbridge.pki.profiles import Purpose, Role, subject_from_dict
from trustbridge.pki.release import Decision, VerifiedIdentity
from trustbridge.pki.revocation import Reason
from trustbridge.store import tables as t

__all__ = [
    "ACCEPT_SIGNATURE",
    "MAX_ADMIN_BODY",
    "Caller",
    "admin_router",
    "remember_nonce",
    "signed_caller",
]

MAX_ADMIN_BODY = 64 * 1024
#: RFC 9421 5.1: what a client must sign, sent with every 401.
ACCEPT_SIGNATURE = (
    f'tb=("@method" "@target-uri" "content-digest" "{CHAIN_HEADER}");'
    f'tag="{SIGNATURE_TAG}";nonce="required"'
)
STAFF = frozenset({Role.OPERATOR, Role.REGISTRATION_OFFICER})
OPERATORS = frozenset({Role.OPERATOR})
OFFICERS = frozenset({Role.REGISTRATION_OFFICER})


@dataclass(frozen=True)
class Caller:
    """An authenticated, authorized caller and the body it signed."""

    identity: VerifiedIdentity
    signed: SignedCaller
    body: bytes


def remember_nonce(home: Home, signed: SignedCaller) -> None:
    now = home.now()
    try:
        with home.engine.begin() as conn:
            conn.execute(delete(t.seen_nonces).where(t.seen_nonces.c.expires_at < now))
            conn.execute(
                insert(t.seen_nonces).values(
                    key_id=signed.key_id, nonce=signed.nonce[:64], expires_at=signed.expires
                )
            )
    except IntegrityError:
        raise AuthenticationError(
            f"the request of {signed.subject} was replayed (nonce {signed.nonce!r} seen before)",
            hint="sign every request afresh",
        ) from None


def signed_caller(home: Home, request: Request, body: bytes) -> SignedCaller:
    """Who signed ``request`` (RFC 9421), checked at the home's time; whether that identity is
    trusted is the caller's next check."""
    return verify_request(
        method=request.method,
        url=str(request.url),
        headers=request.headers.items(),
        body=body,
        at=home.now(),
    )


def _authorize(
    home: Home, request: Request, body: bytes, roles: frozenset[Role], operation: str
) -> Caller:
    signed = signed_caller(home, request, body)
    try:
        identity = home.verify_identity(signed.certificate)
    except ValidationError as exc:
        raise AuthenticationError(
            f"the caller {signed.subject} is not an identity this node trusts: {exc.message}",
            hint="administrative requests need a current identity issued by this node's CAs",
        ) from None
    if roles and not identity.roles & roles:
        needed = " or ".join(sorted(r.value for r in roles))
        raise AccessDeniedError(
            f"{signed.subject} may not {operation}: that needs the {needed} role",
            hint=f"the caller holds {', '.join(sorted(identity.roles)) or 'no role'}",
        )
    remember_nonce(home, signed)
    return Caller(identity, signed, body)


async def authenticate(
    home: Home, request: Request, roles: frozenset[Role], operation: str
) -> Caller:
    """Run the checks of the module docstring; raise 401/403 errors naming the failure."""
    body = await limited_body(request, MAX_ADMIN_BODY)
    # Path validation and database reads leave the event loop.
    return await asyncio.to_thread(_authorize, home, request, body, roles, operation)


Model = TypeVar("Model", bound=BaseModel)


def _parse(model: type[Model], caller: Caller) -> Model:
    try:
        return model.model_validate_json(caller.body or b"{}")
    except SchemaError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"the request body does not fit {model.__name__}: {problems}") from None


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def view(value: Any) -> Any:
    """JSON for records: datetimes in ISO 8601, DER as base64, dataclasses as objects."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: view(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [view(v) for v in value]
    return value


def _certificate_view(info: CertificateInfo) -> dict[str, Any]:
    data: dict[str, Any] = view(info)
    data["subject"] = info.subject_dn
    data["pem"] = info.certificate.public_bytes(Encoding.PEM).decode()
    del data["der"]
    return data


def _outcome(result: RequestInfo | Issued) -> dict[str, Any]:
    if isinstance(result, Issued):
        return {
            "request": view(result.request),
            "certificates": [c.public_bytes(Encoding.PEM).decode() for c in result.certificates],
            "chain": [c.public_bytes(Encoding.PEM).decode() for c in result.chain],
        }
    return {"request": view(result), "certificates": [], "chain": []}


class SubmitBody(BaseModel):
    """An issuance request: the holder's CSR and the subject it is for."""

    ca: str = Field(description="Issuing CA (short name).")
    level: str = Field(description="Assurance level name, e.g. de-high.")
    subject: dict[str, Any] = Field(
        description="The subject as trustbridge profiles describe it, with its `kind`."
    )
    csr: str = Field(description="The holder's PKCS#10 request, PEM.", max_length=32 * 1024)
    purpose: Literal["identity", "key-agreement"] = "identity"
    lifetime_days: int | None = Field(default=None, ge=1, le=3650)


class DecisionBody(BaseModel):
    """A registration officer's signed release decision (``trustbridge request show``)."""

    statement: str = Field(description="The decision statement, base64 of its exact bytes.")
    signature: str = Field(description="Its signature by the caller's key, base64.")


class RevokeBody(BaseModel):
    reason: str = Field(default="unspecified", description="RFC 5280 reason, CLI spelling.")
    compromise_date: datetime | None = Field(
        default=None, description="When the key was (or may have been) compromised."
    )


class TokenBody(BaseModel):
    organization: str = Field(description="The organization whose devices the token enrols.")
    hours: int = Field(default=24, ge=1, le=24 * 30)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"the {what} is not base64") from None


def admin_router(home: Home) -> APIRouter:
    """``/api/v1``: requests, decisions, certificates, revocation, CRLs, tokens, audit."""
    router = APIRouter(prefix="/api/v1", tags=["administration (signed requests)"])
    status = home.status

    def work(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return asyncio.to_thread(fn, *args, **kwargs)

    @router.get("/whoami", summary="The authenticated caller and its roles")
    async def whoami(request: Request) -> dict[str, Any]:
        caller = await authenticate(home, request, frozenset(), "ask who they are")
        return {
            "subject": caller.signed.subject,
            "fingerprint": caller.identity.fingerprint,
            "roles": sorted(caller.identity.roles),
            "kind": caller.identity.kind,
        }

    @router.get("/requests", summary="Issuance requests, newest first")
    async def requests(
        request: Request, state: str | None = None, ca: str | None = None
    ) -> list[dict[str, Any]]:
        await authenticate(home, request, STAFF, "list requests")
        return [view(r) for r in await work(home.requests, state=state, ca=ca)]

    @router.get("/requests/{request_id}", summary="One request, with the digest a decision signs")
    async def request_show(request_id: str, request: Request) -> dict[str, Any]:
        await authenticate(home, request, STAFF, "read requests")
        result: dict[str, Any] = view(await work(home.request, request_id))
        return result

    @router.post(
        "/requests",
        summary="Submit an issuance request; an approval rule may release it at once",
        openapi_extra=_body_doc(SubmitBody),
    )
    async def submit(request: Request) -> dict[str, Any]:
        caller = await authenticate(home, request, STAFF, "submit requests")
        body = _parse(SubmitBody, caller)
        subject = subject_from_dict(body.subject)
        result = await work(
            home.submit_request,
            ca=body.ca,
            subject=subject,
            level=body.level,
            csr_data=body.csr.encode(),
            csr_source="the request's csr",
            purpose=Purpose(body.purpose),
            lifetime_days=body.lifetime_days,
            requester=caller.identity.principal,
        )
        return _outcome(result)

    @router.post(
        "/requests/{request_id}/decision",
        summary="Approve or reject a request with the caller's signed decision (four eyes)",
        openapi_extra=_body_doc(DecisionBody),
    )
    async def decide(request_id: str, request: Request) -> dict[str, Any]:
        caller = await authenticate(home, request, OFFICERS, "decide on requests")
        body = _parse(DecisionBody, caller)
        decision = Decision.from_payload(_b64(body.statement, "decision statement"))
        result = await work(
            home.decide,
            request_id,
            decision=decision,
            signature=_b64(body.signature, "decision signature"),
            officer=caller.identity.certificate,
        )
        return _outcome(result)

    @router.get("/certificates/{serial}", summary="One issued certificate and its status")
    async def certificate(serial: str, request: Request, ca: str | None = None) -> dict[str, Any]:
        await authenticate(home, request, STAFF, "read certificates")
        return _certificate_view(await work(home.certificate, serial, ca=ca))

    @router.post(
        "/certificates/{serial}/revoke",
        summary="Revoke a certificate; CRLs and OCSP answers follow at once",
        openapi_extra=_body_doc(RevokeBody),
    )
    async def revoke(serial: str, request: Request, ca: str | None = None) -> dict[str, Any]:
        caller = await authenticate(home, request, STAFF, "revoke certificates")
        body = _parse(RevokeBody, caller)
        info = await work(
            status.revoke,
            serial,
            reason=Reason.parse(body.reason),
            ca=ca,
            invalidity_date=body.compromise_date,
            actor=caller.identity.principal,
        )
        return _certificate_view(info)

    @router.post("/certificates/{serial}/suspend", summary="Put a certificate on hold")
    async def suspend(serial: str, request: Request, ca: str | None = None) -> dict[str, Any]:
        caller = await authenticate(home, request, STAFF, "suspend certificates")
        info = await work(status.suspend, serial, ca=ca, actor=caller.identity.principal)
        return _certificate_view(info)

    @router.post("/certificates/{serial}/resume", summary="Lift a hold")
    async def resume(serial: str, request: Request, ca: str | None = None) -> dict[str, Any]:
        caller = await authenticate(home, request, STAFF, "resume certificates")
        info = await work(status.resume, serial, ca=ca, actor=caller.identity.principal)
        return _certificate_view(info)

    @router.post("/cas/{ca}/crls", summary="Issue a full and a delta CRL now")
    async def issue_crls(ca: str, request: Request) -> list[dict[str, Any]]:
        await authenticate(home, request, OPERATORS, "issue CRLs")
        issued = await work(status.issue_crls, ca)
        return [{k: v for k, v in view(info).items() if k != "der"} for info in issued]

    @router.post(
        "/enrolment-tokens",
        summary="A one-time EST enrolment token for an organization's machines and software",
        openapi_extra=_body_doc(TokenBody),
    )
    async def enrolment_token(request: Request) -> dict[str, Any]:
        caller = await authenticate(home, request, OPERATORS, "create enrolment tokens")
        body = _parse(TokenBody, caller)
        token = await work(
            home.create_enrolment_token,
            organization=body.organization,
            valid_for=timedelta(hours=body.hours),
            actor=caller.identity.principal,
        )
        return {"token": token, "organization": body.organization, "hours": body.hours}

    @router.get("/audit", summary="The audit trail, newest first")
    async def audit(
        request: Request, object_id: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        await authenticate(home, request, OPERATORS, "read the audit trail")
        events = await work(home.audit_events, object_id=object_id, limit=min(limit, 1000))
        return [view(e) for e in events]

    return router
