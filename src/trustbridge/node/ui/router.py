"""The web UI's routes: server-rendered pages under ``/ui/`` on the node's HTTPS listener.

Every page is rendered from the data of :mod:`trustbridge.node.ui.data` with Jinja2 (escaping
on), styles and scripts come from the node itself (``/ui/static/``), and the answers carry a
content security policy that allows nothing else. Who may see what follows the API: public
artifacts (CAs and their status, trust lists, the log, provenance) are public pages; identities
and requests need an operator or registration officer, decisions a registration officer;
partners, contracts and messages an operator (on a company node, its people too). What a public
page shows of the node's business (its assessments of the organizations in a provenance chain,
the partners whose logs it follows) is for those roles only, and the work anyone may ask for
(a chain verification, a list of components) is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from trustbridge import __version__
from trustbridge.assessment.html import render_html, render_svg_chart
from trustbridge.clock import ensure_utc
from trustbridge.errors import (
    AccessDeniedError,
    AuthenticationError,
    InputError,
    NotFoundError,
    TrustbridgeError,
)
from trustbridge.home import Home
from trustbridge.node._http import limited_body
from trustbridge.node.admin import OFFICERS, STAFF
from trustbridge.node.est import _peer
from trustbridge.node.ui import data
from trustbridge.node.ui.decision import browser_key, der_signature, prepare_decision
from trustbridge.node.ui.login import (
    CsrfGuard,
    MemberRoles,
    Viewer,
    check_same_origin,
    require,
    viewer_of,
)
from trustbridge.pki.profiles import Role
from trustbridge.pki.release import Decision

__all__ = ["PREFIX", "ui_router"]

PREFIX = "/ui"
#: A decision form: a statement of a few hundred bytes, a signature, a token.
MAX_FORM = 16 * 1024
#: How long a provenance verification is reused for anonymous readers.
_VERIFIED_FOR = 60.0
#: How many chain verifications may run at once (each resolves every signer of the chain:
#: path building, CRL and OCSP fetches), and how many verified pages are kept.
_VERIFYING_AT_ONCE = 2
_VERIFIED_KEPT = 256
#: Seconds a reader is asked to wait when the verifications are busy.
_RETRY_AFTER = "10"
_NODE = Path(__file__).resolve().parent.parent
_TEMPLATES = _NODE / "templates"
_STATIC = _NODE / "static"
_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_PUBLIC: frozenset[Role] | None = None
#: Partners, contracts and messages: the node's operators, and on a company node its people.
BUSINESS = MemberRoles({Role.OPERATOR})
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
#: The assessment page of :mod:`trustbridge.assessment.html` is self-contained (inline CSS).
_CSP_DOCUMENT = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "form-action 'none'; base-uri 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

#: The navigation: path, title, roles (None: public).
NAVIGATION: tuple[tuple[str, str, frozenset[Role] | None], ...] = (
    ("/identities", "Identities", STAFF),
    ("/requests", "Requests", STAFF),
    ("/cas", "CAs & status", _PUBLIC),
    ("/trust", "Trust lists", _PUBLIC),
    ("/partners", "Partners", BUSINESS),
    ("/contracts", "Contracts", BUSINESS),
    ("/messages", "Messages", BUSINESS),
    ("/log", "Log", _PUBLIC),
    ("/provenance", "Provenance", _PUBLIC),
)


def _when(value: datetime | None) -> str:
    if value is None:
        return "\u2014"
    return f"{ensure_utc(value):%Y-%m-%d %H:%M:%S} UTC"


def _roles_text(roles: frozenset[Role] | None) -> str:
    if roles is None:
        return "public"
    return " or ".join(sorted(r.value for r in roles))


def environment() -> Environment:
    """The UI's Jinja2 environment: the node's templates, escaping always on."""
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["hex"] = lambda value: bytes(value).hex()
    env.filters["dn"] = lambda certificate: certificate.subject.rfc4514_string()
    env.filters["roles"] = _roles_text
    env.globals["prefix"] = PREFIX
    env.globals["version"] = __version__
    return env


def _static_files() -> dict[str, tuple[bytes, str]]:
    return {
        path.name: (path.read_bytes(), _MEDIA[path.suffix])
        for path in sorted(_STATIC.iterdir())
        if path.suffix in _MEDIA
    }


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"the {what} is not base64") from None


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise InputError("the form is not URL-encoded ASCII") from None
    return {k: v[0] for k, v in fields.items() if v}


def _status(exc: TrustbridgeError) -> int:
    """The HTTP status of an error, as the API answers it."""
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, AccessDeniedError):
        return 403
    return 404 if isinstance(exc, NotFoundError) else 400


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


class _Pages:
    """Rendering with the common frame: the node, the viewer, the navigation."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.env = environment()
        self.guard = CsrfGuard.for_home(home)

    def viewer(self, request: Request) -> Viewer:
        return viewer_of(self.home, _peer(request))

    def render(
        self, viewer: Viewer, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        csrf = (
            self.guard.token(viewer.certificate, self.home.now())
            if viewer.logged_in and viewer.certificate is not None
            else ""
        )
        navigation = [
            {
                "path": PREFIX + path,
                "title": title,
                "roles": roles,
                "open": roles is None or viewer.has(roles),
            }
            for path, title, roles in NAVIGATION
        ]
        body = self.env.get_template(template).render(
            node=self.home.config.node_name,
            viewer=viewer,
            navigation=navigation,
            csrf=csrf,
            now=self.home.now(),
            **context,
        )
        return HTMLResponse(
            body, status_code=status, headers={**_HEADERS, "Content-Security-Policy": _CSP}
        )

    def guarded(
        self,
        request: Request,
        roles: frozenset[Role] | None,
        operation: str,
        build: Callable[[Viewer], Response],
    ) -> Response:
        """``build`` the page for the viewer if ``roles`` allow; a login, 403 or error page
        (with the reason) otherwise."""
        viewer = self.viewer(request)
        try:
            if roles is not None:
                require(viewer, roles, operation)
            return build(viewer)
        except TrustbridgeError as exc:
            return self.problem(viewer, exc)

    def show(
        self,
        request: Request,
        roles: frozenset[Role] | None,
        operation: str,
        template: str,
        context: Callable[[], dict[str, Any]],
    ) -> Response:
        """:meth:`guarded` for a page that is ``template`` rendered with ``context()``."""
        return self.guarded(
            request, roles, operation, lambda viewer: self.render(viewer, template, **context())
        )

    def problem(self, viewer: Viewer, exc: TrustbridgeError) -> HTMLResponse:
        """The page for a refusal: how to log in (401), not allowed (403), or the error."""
        status = _status(exc)
        template = {401: "login.html", 403: "forbidden.html"}.get(status, "error.html")
        return self.render(viewer, template, status=status, error=exc)


class _Verifications:
    """The chain verifications the component pages offer to anyone: a result is reused for
    :data:`_VERIFIED_FOR` seconds, a chain is verified once at a time, and at most
    :data:`_VERIFYING_AT_ONCE` verifications run at once; a request beyond that is answered at
    once without one (it would hold a worker thread, and the next one another)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._pages: dict[tuple[str, int], tuple[float, data.ComponentPage]] = {}
        self._running: set[tuple[str, int]] = set()

    def page(self, component: str) -> data.ComponentPage | None:
        """The component's page with its chain verified; None while verifications are busy."""
        size = len(self.home.provenance.history(component))
        if not size:
            return data.component_page(self.home, component)  # raises NotFoundError
        key = (component, size)
        with self._lock:
            cached = self._pages.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            if key in self._running or len(self._running) >= _VERIFYING_AT_ONCE:
                return None
            self._running.add(key)
        try:
            page = data.component_page(self.home, component, verify=True)
        finally:
            with self._lock:
                self._running.discard(key)
        with self._lock:
            now = time.monotonic()
            for old in [k for k, (until, _) in self._pages.items() if until <= now]:
                del self._pages[old]
            while len(self._pages) >= _VERIFIED_KEPT:
                del self._pages[next(iter(self._pages))]
            self._pages[key] = (now + _VERIFIED_FOR, page)
        return page


def ui_router(home: Home) -> APIRouter:
    """``/ui/``: the node's web UI (see the module docstring)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    pages = _Pages(home)
    static = _static_files()
    verifications = _Verifications(home)

    @router.get("")
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.get("/static/{name}")
    def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            return Response("no such file", status_code=404, media_type="text/plain")
        content, media = found
        return Response(
            content,
            media_type=media,
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/")
    def overview(request: Request) -> Response:
        config = home.config

        def build(viewer: Viewer) -> Response:
            return pages.render(
                viewer,
                "index.html",
                http=config.base_url,
                https=f"https://{config.host}:{config.https_port}",
                cas=[c for c in home.cas() if c.state == "active"],
                log_size=home.log.size,
            )

        return pages.guarded(request, _PUBLIC, "", build)

    @router.get("/login")
    def login(request: Request) -> Response:
        return pages.show(request, _PUBLIC, "", "login.html", lambda: {"error": None})

    # -- public: CAs, trust lists, the log, provenance --------------------------------------

    @router.get("/cas")
    def cas(request: Request) -> Response:
        return pages.show(request, _PUBLIC, "", "cas.html", lambda: {"rows": data.ca_rows(home)})

    @router.get("/trust")
    def trust(request: Request) -> Response:
        return pages.show(
            request, _PUBLIC, "", "trust.html", lambda: {"page": data.trust_page(home)}
        )

    @router.get("/log")
    def log(request: Request, before: int | None = None) -> Response:
        def build(viewer: Viewer) -> Response:
            page = data.log_page(home, before=before)
            if not viewer.has(BUSINESS):
                # A company node follows the log of every partner it contacts: the list names
                # its partners, which the partners page shows to the business roles only.
                page = replace(page, peers=())
            return pages.render(viewer, "log.html", page=page)

        return pages.guarded(request, _PUBLIC, "", build)

    @router.get("/log/entries/{index}")
    def log_entry(request: Request, index: int) -> Response:
        def context() -> dict[str, Any]:
            entry, body = data.log_entry(home, index)
            return {"index": index, "entry": entry, "body": body}

        return pages.show(request, _PUBLIC, "", "entry.html", context)

    @router.get("/provenance")
    def provenance(request: Request, q: str = "") -> Response:
        return pages.show(
            request,
            _PUBLIC,
            "",
            "provenance.html",
            lambda: {
                "components": data.components(home, prefix=q),
                "q": q,
                "limit": data.PAGE_ROWS,
            },
        )

    @router.get("/provenance/{component:path}")
    def component(request: Request, component: str, verify: bool = False) -> Response:
        def build(viewer: Viewer) -> Response:
            page = verifications.page(component) if verify else None
            busy = verify and page is None
            if page is None:
                page = data.component_page(home, component)
            if busy:
                page = replace(
                    page,
                    problem="the chain is not verified now: the node is verifying other chains "
                    f"(at most {_VERIFYING_AT_ONCE} at once); try again in a few seconds",
                )
            # Our assessments of the organizations in the chain are business information
            # (the partners page): for the business roles only.
            verification = page.verification
            assessments = (
                verification.assessments
                if verification is not None and viewer.has(BUSINESS)
                else {}
            )
            response = pages.render(
                viewer,
                "component.html",
                status=503 if busy else 200,
                page=page,
                assessments=assessments,
            )
            if busy:
                response.headers["Retry-After"] = _RETRY_AFTER
            return response

        return pages.guarded(request, _PUBLIC, "", build)

    # -- identities and requests (operators and registration officers) -------------------------

    @router.get("/identities")
    def identities(
        request: Request,
        kind: str = "",
        holder: str = "",
        ca: str = "",
        status: str = "",
    ) -> Response:
        filters = {"kind": kind, "holder": holder, "ca": ca, "status": status}
        return pages.show(
            request,
            STAFF,
            "list identities",
            "identities.html",
            lambda: {
                "rows": data.certificate_rows(home, **filters),
                "filters": filters,
                "limit": data.PAGE_ROWS,
                "cas": [c.slug for c in home.cas()],
            },
        )

    @router.get("/identities/{ca}/{serial}")
    def certificate(request: Request, ca: str, serial: str) -> Response:
        return pages.show(
            request,
            STAFF,
            "read certificates",
            "certificate.html",
            lambda: {"detail": data.certificate_detail(home, serial, ca=ca)},
        )

    @router.get("/requests")
    def requests(request: Request, state: str = "", ca: str = "") -> Response:
        return pages.show(
            request,
            STAFF,
            "list requests",
            "requests.html",
            lambda: {
                "rows": data.request_rows(home, state=state, ca=ca),
                "filters": {"state": state, "ca": ca},
                "cas": [c.slug for c in home.cas()],
            },
        )

    def request_page(
        viewer: Viewer, request_id: str, *, status: int = 200, error: TrustbridgeError | None
    ) -> Response:
        detail = data.request_detail(home, request_id)
        officer = viewer.has(OFFICERS) and detail.info.state == "pending"
        key = browser_key(viewer.certificate) if officer and viewer.certificate else None
        return pages.render(
            viewer,
            "request.html",
            status=status,
            detail=detail,
            officer=officer,
            key=key,
            error=error,
        )

    @router.get("/requests/{request_id}")
    def request_show(request: Request, request_id: str) -> Response:
        return pages.guarded(
            request,
            STAFF,
            "read requests",
            lambda viewer: request_page(viewer, request_id, error=None),
        )

    @router.get("/requests/{request_id}/statement")
    def statement(
        request: Request, request_id: str, decision: str = "approve", reason: str = ""
    ) -> JSONResponse:
        """The exact decision statement to sign (JSON: base64 bytes and their text)."""
        viewer = pages.viewer(request)
        try:
            require(viewer, OFFICERS, "decide on requests")
            prepared = prepare_decision(home, request_id, decision, reason)
        except TrustbridgeError as exc:
            return JSONResponse(
                {"error": exc.message, "hint": exc.hint},
                status_code=_status(exc),
                headers=_HEADERS,
            )
        payload = prepared.payload()
        return JSONResponse(
            {
                "statement": base64.b64encode(payload).decode(),
                "text": payload.decode(),
                "request": request_id,
                "decision": prepared.decision,
            },
            headers=_HEADERS,
        )

    def decide(request: Request, request_id: str, body: bytes) -> Response:
        viewer = pages.viewer(request)
        try:
            require(viewer, OFFICERS, "decide on requests")
            assert viewer.certificate is not None
            check_same_origin(request.headers, _origin(request))
            form = _form(body)
            pages.guard.check(form.get("csrf", ""), viewer.certificate, home.now())
        except TrustbridgeError as exc:
            return pages.problem(viewer, exc)
        try:
            decision = Decision.from_payload(_b64(form.get("statement", ""), "statement"))
            signature = der_signature(
                viewer.certificate, _b64(form.get("signature", ""), "signature")
            )
            home.decide(
                request_id, decision=decision, signature=signature, officer=viewer.certificate
            )
        except NotFoundError as exc:
            return pages.problem(viewer, exc)
        except TrustbridgeError as exc:
            return request_page(viewer, request_id, status=400, error=exc)
        return RedirectResponse(
            f"{PREFIX}/requests/{request_id}?decided={decision.decision}", status_code=303
        )

    @router.post("/requests/{request_id}/decision")
    async def decision(request: Request, request_id: str) -> Response:
        body = await limited_body(request, MAX_FORM)
        # Path validation and the issuance leave the event loop.
        return await asyncio.to_thread(decide, request, request_id, body)

    # -- partners, contracts, messages (operators) ---------------------------------------------

    @router.get("/partners")
    def partners(request: Request) -> Response:
        return pages.show(
            request,
            BUSINESS,
            "see partners",
            "partners.html",
            lambda: {"rows": data.partner_rows(home), "configured": home.exchange.configured},
        )

    @router.get("/partners/{session_id}")
    def partner(request: Request, session_id: str) -> Response:
        def context() -> dict[str, Any]:
            detail = data.partner_detail(home, session_id)
            return {"detail": detail, "chart": _chart(detail.assessment)}

        return pages.show(request, BUSINESS, "see partners", "partner.html", context)

    @router.get("/partners/{session_id}/assessment")
    def assessment(request: Request, session_id: str) -> Response:
        def build(_viewer: Viewer) -> Response:
            detail = data.partner_detail(home, session_id)
            if detail.assessment is None:
                raise NotFoundError(f"session {session_id} holds no assessment of the partner")
            return HTMLResponse(
                render_html(detail.assessment),
                headers={**_HEADERS, "Content-Security-Policy": _CSP_DOCUMENT},
            )

        return pages.guarded(request, BUSINESS, "see partners", build)

    @router.get("/contracts")
    def contracts(request: Request) -> Response:
        return pages.show(
            request,
            BUSINESS,
            "see contracts",
            "contracts.html",
            lambda: {"rows": data.contract_rows(home)},
        )

    @router.get("/contracts/{session_id}")
    def contract(request: Request, session_id: str) -> Response:
        return pages.show(
            request,
            BUSINESS,
            "see contracts",
            "contract.html",
            lambda: {"detail": data.contract_detail(home, session_id)},
        )

    @router.get("/contracts/{session_id}/contract.pdf")
    def contract_pdf(request: Request, session_id: str) -> Response:
        def build(_viewer: Viewer) -> Response:
            return Response(
                home.exchange.contract(session_id),
                media_type="application/pdf",
                headers={
                    **_HEADERS,
                    "Content-Disposition": f'attachment; filename="contract-{session_id}.pdf"',
                },
            )

        return pages.guarded(request, BUSINESS, "see contracts", build)

    @router.get("/messages")
    def messages(request: Request, direction: str = "") -> Response:
        return pages.show(
            request,
            BUSINESS,
            "see messages",
            "messages.html",
            lambda: {"rows": data.message_rows(home, direction=direction), "direction": direction},
        )

    return router


def _chart(assessment: Mapping[str, Any] | None) -> Markup | None:
    """The score chart of an assessment (an inline SVG), where it has the fields for one."""
    if assessment is None:
        return None
    try:
        svg = render_svg_chart(
            assessment["characteristics"],
            assessment["thresholds"],
            overall=(assessment["score"], assessment["confidence"]),
        )
    except (KeyError, TypeError, TrustbridgeError):
        return None
    # Built by trustbridge.assessment.html with every value escaped.
    return Markup(svg)  # noqa: S704
