"""The node's HTTP applications: public PKI artifacts over plain HTTP, the API over HTTPS.

PKI convention puts CRLs, OCSP and CA certificates on plain HTTP (they are signed objects, and
fetching them over TLS would need revocation checking of its own): :func:`public_app` serves
them at the URLs the certificates name. :func:`api_app` is the HTTPS side: health, the
node's description and, in later issues, EST and the partner-facing endpoints.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from trustbridge import __version__
from trustbridge.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    KeyStoreError,
    NotFoundError,
    TrustbridgeError,
)
from trustbridge.exchange.protocol import StepOrderError
from trustbridge.home import Home
from trustbridge.home.credentials import LIST_TTL, STATUS_PATH
from trustbridge.node._http import limited_body
from trustbridge.node.admin import ACCEPT_SIGNATURE, admin_router
from trustbridge.node.est import est_router
from trustbridge.node.log import log_router
from trustbridge.node.partner import partner_router
from trustbridge.node.provenance import provenance_router
from trustbridge.node.ui import ui_router
from trustbridge.pki.tsa import TIMESTAMP_REPLY_MEDIA_TYPE

log = logging.getLogger("trustbridge.node")

__all__ = ["OCSP_REQUEST", "OCSP_RESPONSE", "NodeState", "api_app", "public_app"]

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PKIX_CRL = "application/pkix-crl"
PKCS7_MIME = "application/pkcs7-mime"
PKIX_CERT = "application/pkix-cert"
JOSE = "application/jose"
_LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.jws$")
_STATUS_NAME = re.compile(r"^(revocation|suspension)-[0-9]{1,6}$")
#: Largest OCSP request body accepted (a single-certificate request is about 100 bytes).
MAX_OCSP_REQUEST = 8 * 1024
#: Largest time-stamp request accepted (a SHA-512 imprint with a nonce is about 100 bytes).
MAX_TSA_REQUEST = 8 * 1024


class NodeState:
    """What the applications share: the home and the node's readiness."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.ready = False
        self.last_refresh: datetime | None = None
        self.refresh_error: str | None = None

    def health(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "starting",
            "node": self.home.config.node_name,
            "version": __version__,
            "cas": [c.slug for c in self.home.cas() if c.state == "active"],
            "last_refresh": self.last_refresh.isoformat() if self.last_refresh else None,
            "refresh_error": self.refresh_error,
        }


def _ca_slug(state: NodeState, slug: str) -> str:
    try:
        info = state.home.ca(slug)
    except NotFoundError:
        raise HTTPException(404, f"no CA {slug!r} on this node") from None
    if info.state != "active":
        raise HTTPException(404, f"CA {slug!r} has no certificate yet")
    return slug


def _p7c(certificates: list[x509.Certificate], filename: str) -> Response:
    return Response(
        pkcs7.serialize_certificates(certificates, Encoding.DER),
        media_type=PKCS7_MIME,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _http_date(value: datetime) -> str:
    return format_datetime(value, usegmt=True)


def _cache_headers(this_update: datetime, next_update: datetime, now: datetime) -> dict[str, str]:
    """RFC 5019 6.2: let caches keep an answer until just before its nextUpdate."""
    max_age = max(0, int((next_update - now).total_seconds()))
    return {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Last-Modified": _http_date(this_update),
        "Expires": _http_date(next_update),
    }


def public_app(state: NodeState) -> FastAPI:
    """CRLs, delta CRLs, OCSP, CA certificates, ``.p7c`` bundles, the TSA, health: over HTTP.

    The handlers are coroutines that do their (short) work on the event loop: FastAPI runs
    plain functions in worker threads, and the hand-over of the GIL to a worker costs
    milliseconds under load, many times the work itself.
    """
    app = FastAPI(
        title=f"trustbridge node {state.home.config.node_name}: public PKI artifacts",
        version=__version__,
        docs_url=None,
        redoc_url=None,
    )
    status = state.home.status

    @app.get("/health", summary="Readiness of the node")
    async def health() -> JSONResponse:
        body = state.health()
        return JSONResponse(body, status_code=200 if state.ready else 503)

    def _crl(slug: str, delta: bool) -> Response:
        _ca_slug(state, slug)
        try:
            info = status.latest_crl(slug, delta=delta)
        except NotFoundError:
            if delta:
                raise HTTPException(404, f"CA {slug} has published no delta CRL yet") from None
            status.issue_crls(slug)
            info = status.latest_crl(slug)
        now = state.home.now()
        headers = _cache_headers(info.this_update, info.next_update, now)
        headers["ETag"] = f'"{slug}-{info.number}{"-d" if delta else ""}"'
        return Response(info.der, media_type=PKIX_CRL, headers=headers)

    @app.get("/pki/{slug}/crl", summary="The CA's latest full CRL (DER)")
    async def crl(slug: str) -> Response:
        return _crl(slug, delta=False)

    @app.get("/pki/{slug}/delta-crl", summary="The CA's latest delta CRL (DER)")
    async def delta_crl(slug: str) -> Response:
        return _crl(slug, delta=True)

    @app.get("/pki/{slug}/ca.crt", summary="The CA's certificate (DER)")
    async def ca_certificate(slug: str) -> Response:
        _ca_slug(state, slug)
        certificate = state.home.ca(slug).certificate
        assert certificate is not None
        return Response(certificate.public_bytes(Encoding.DER), media_type=PKIX_CERT)

    @app.get(
        "/pki/{slug}/issuers.p7c",
        summary="The CA's certificate, its chain and cross-certificates issued to it (AIA)",
    )
    async def issuers(slug: str) -> Response:
        _ca_slug(state, slug)
        return _p7c(state.home.bridge.issuers_bundle(slug), f"{slug}.p7c")

    @app.get(
        "/pki/{slug}/issued.p7c",
        summary="CA certificates the CA issued: subordinates and cross-certificates (SIA)",
    )
    async def issued(slug: str) -> Response:
        _ca_slug(state, slug)
        return _p7c(state.home.bridge.issued_bundle(slug), f"{slug}-issued.p7c")

    async def _answer(slug: str, der: bytes) -> Response:
        # Answered on the event loop: a pre-signed answer is one indexed read (about 0.2 ms);
        # a hop to a worker thread would cost more than that (GIL hand-over).
        answer = status.answer(der, ca=slug)
        headers: dict[str, str] = {}
        if answer.cacheable and answer.next_update is not None:
            now = state.home.now()
            headers = _cache_headers(answer.this_update or now, answer.next_update, now)
        return Response(answer.der, media_type=OCSP_RESPONSE, headers=headers)

    @app.post("/pki/{slug}/ocsp", summary="OCSP (RFC 6960) over POST")
    async def ocsp_post(slug: str, request: Request) -> Response:
        body = await limited_body(request, MAX_OCSP_REQUEST)
        return await _answer(slug, body)

    @app.get("/pki/{slug}/ocsp/{encoded:path}", summary="OCSP (RFC 6960, RFC 5019) over GET")
    async def ocsp_get(slug: str, encoded: str) -> Response:
        try:
            der = base64.b64decode(unquote(encoded), validate=True)
        except (binascii.Error, ValueError):
            der = b""  # answered as malformedRequest
        return await _answer(slug, der)

    async def _timestamp(slug: str, request: Request) -> Response:
        body = await limited_body(request, MAX_TSA_REQUEST)
        reply = status.tsa(slug).respond(body)
        return Response(reply, media_type=TIMESTAMP_REPLY_MEDIA_TYPE)

    @app.post("/tsa", summary="Time-stamp (RFC 3161) from the node's default TSA")
    async def timestamp(request: Request) -> Response:
        return await _timestamp(status.default_tsa_ca(), request)

    @app.post("/tsa/{slug}", summary="Time-stamp (RFC 3161) from the TSA of one CA")
    async def timestamp_of(slug: str, request: Request) -> Response:
        return await _timestamp(_ca_slug(state, slug), request)

    @app.get("/tsa/{slug}/tsa.crt", summary="The TSA certificate of one CA (DER)")
    async def tsa_certificate(slug: str) -> Response:
        certificate = status.tsa(_ca_slug(state, slug)).certificate
        return Response(certificate.public_bytes(Encoding.DER), media_type=PKIX_CERT)

    @app.get("/trust/{name}", summary="A signed trust list or LOTL this node publishes (JWS)")
    async def published_list(name: str) -> Response:
        if not _LIST_NAME.match(name):
            raise HTTPException(404, f"no published list {name!r}")
        path = state.home.path / "trust" / "published" / name
        try:
            data = path.read_bytes()
        except OSError:
            raise HTTPException(404, f"this node publishes no list {name!r}") from None
        return Response(data, media_type=JOSE)

    @app.get(
        f"{STATUS_PATH}/{{name}}",
        summary="A W3C Bitstring Status List this node publishes as credential issuer (vc+jwt)",
    )
    async def status_list(name: str) -> Response:
        if not _STATUS_NAME.match(name):
            raise HTTPException(404, f"no status list {name!r}")
        try:
            token = state.home.credentials.signed_status_list(name)
        except NotFoundError:
            raise HTTPException(404, f"this node publishes no status list {name!r}") from None
        return Response(
            token,
            media_type="application/vc+jwt",
            headers={"Cache-Control": f"max-age={int(LIST_TTL.total_seconds())}, public"},
        )

    app.include_router(log_router(state.home))
    app.include_router(provenance_router(state.home, api=False))
    _error_handlers(app)
    return app


def api_app(state: NodeState) -> FastAPI:
    """The HTTPS side: health, the node's description, EST, the signed administrative API, the
    partner API of a company node, and the web UI (``/ui/``).

    The OpenAPI document is at ``/openapi.json``; no Swagger or ReDoc page: those load their
    scripts from a CDN, and a page of this origin runs with the staff's client certificates
    (the web UI's pages would be at its mercy).
    """
    app = FastAPI(
        title=f"trustbridge node {state.home.config.node_name}",
        version=__version__,
        description="The trustbridge node API. Public PKI artifacts are on the HTTP listener.",
        docs_url=None,
        redoc_url=None,
    )

    config = state.home.config

    @app.get("/health", summary="Readiness of the node")
    async def health() -> JSONResponse:
        body = state.health()
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/api/v1/node", summary="This node: name, URLs and certificate authorities")
    def node() -> dict[str, Any]:
        config = state.home.config
        return {
            "node": config.node_name,
            "http": config.base_url,
            "https": f"https://{config.host}:{config.https_port}",
            "cas": [
                {
                    "slug": c.slug,
                    "name": c.name,
                    "scheme": c.scheme,
                    "root": c.is_root,
                    "levels": list(c.levels),
                    "kinds": list(c.kinds),
                    "crl": f"{config.base_url}/pki/{c.slug}/crl",
                    "ocsp": f"{config.base_url}/pki/{c.slug}/ocsp",
                }
                for c in state.home.cas()
                if c.state == "active"
            ],
        }

    app.include_router(est_router(state.home))
    app.include_router(admin_router(state.home))
    app.include_router(log_router(state.home))
    app.include_router(provenance_router(state.home, api=True))
    app.include_router(ui_router(state.home))
    if state.home.exchange.configured:
        https = f"https://{config.host}:{config.https_port}"
        app.include_router(partner_router(state.home, https_url=https))
    _error_handlers(app)
    return app


def _error_handlers(app: FastAPI) -> None:
    """Errors are answers with a reason, never a traceback or a bare 500."""

    @app.exception_handler(TrustbridgeError)
    async def trustbridge_error(_request: Request, exc: TrustbridgeError) -> JSONResponse:
        if isinstance(exc, ConfigError | KeyStoreError):
            # The node's own configuration, secrets or keys: its operator's business (file
            # names, environment variables), not the caller's.
            log.error("a request failed on this node's configuration: %s", exc.diagnostics())
            return JSONResponse(
                {
                    "error": "this node cannot answer: a problem with its own configuration "
                    "or keys",
                    "hint": "its operator finds the reason in the node's log",
                },
                status_code=503,
            )
        headers: dict[str, str] = {}
        if isinstance(exc, AuthenticationError):
            code, headers["Accept-Signature"] = 401, ACCEPT_SIGNATURE
        elif isinstance(exc, AccessDeniedError):
            code = 403
        elif isinstance(exc, StepOrderError):
            code = 409
        else:
            code = 404 if isinstance(exc, NotFoundError) else 400
        return JSONResponse(
            {"error": exc.message, "hint": exc.hint}, status_code=code, headers=headers
        )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": f"internal error: {type(exc).__name__}", "hint": "see the node's log"},
            status_code=500,
        )
