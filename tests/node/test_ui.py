"""The web UI without a browser: pages, roles, login, CSRF and the officer's signed decision.

The node's HTTPS app runs in-process (httpx over ASGI); the TLS client certificate a browser would
present is put into the ASGI scope the way the node's uvicorn protocol does.
"""

from __future__ import annotations

import asyncio
import base64
import html
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, event, insert

from tests.homes import (
    MUSTER,
    NOW,
    PASSPHRASE,
    PASSPHRASE_ENV,
    Holder,
    build_reference_home,
    new_holder,
)
from tests.provenance import happy, world
from trustbridge import demo
from trustbridge.assessment.engine import Partner, PartnerEvidence, assess
from trustbridge.assessment.policy import RequirementPolicy, shipped_policy
from trustbridge.errors import AccessDeniedError, ApprovalError, InputError, ValidationError
from trustbridge.exchange.contract import (
    ContractReport,
    ContractTerms,
    DocumentTimestampReport,
    SignatureReport,
)
from trustbridge.exchange.protocol import ExchangeError
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.home.exchange import Party, SessionInfo
from trustbridge.home.log import Peer
from trustbridge.home.provenance import ProvenanceVerification
from trustbridge.home.records import RequestInfo
from trustbridge.node.admin import OFFICERS, STAFF
from trustbridge.node.app import NodeState, api_app
from trustbridge.node.ui import data
from trustbridge.node.ui.decision import browser_key, der_signature, prepare_decision
from trustbridge.node.ui.login import CsrfGuard, Viewer, check_same_origin, viewer_of
from trustbridge.node.ui.router import BUSINESS, environment
from trustbridge.oids import ID_AT_ORGANIZATION_IDENTIFIER
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import Role, SubjectKind, subject_kind_extension
from trustbridge.pki.revocation import Reason
from trustbridge.pki.signers import FileSigner, jose_signature
from trustbridge.provenance.verify import LoggedStatement, verify_chain
from trustbridge.store import tables as t
from trustbridge.trust.lists import (
    Operator,
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
    sign_trust_list,
)

from .conftest import issue_operator, issue_person
from .test_httpsig import self_signed

ORIGIN = "https://node.test"


@dataclass
class UiNode:
    home: Home
    app: Any
    officer: Holder
    operator: Holder
    #: A second registration officer (four eyes among officers).
    officer2: Holder


class Browser:
    """What a browser does against the UI: GET and POST with a client certificate."""

    def __init__(self, node: UiNode, holder: Holder | x509.Certificate | None) -> None:
        certificate = holder.certificate if isinstance(holder, Holder) else holder
        der = certificate.public_bytes(Encoding.DER) if certificate is not None else None
        app = node.app

        async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
            if der is not None and scope["type"] == "http":
                scope = {**scope, "extensions": {"tls": {"client_cert_der": der}}}
            await app(scope, receive, send)

        self.transport = httpx.ASGITransport(app=with_certificate)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url=ORIGIN) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"} if headers is None else headers
        return self.request("POST", path, data=form, headers=sent)


def text_of(response: httpx.Response) -> str:
    """The page's text without tags, entities resolved, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def csrf_of(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', response.text)
    assert found is not None, "the page has no decision form"
    return found.group(1)


def pending_request(home: Home, name: str) -> str:
    subject = replace(MUSTER, name=name)
    result = home.submit_request(
        ca="ids", subject=subject, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(result, RequestInfo)
    return result.id


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiNode]:
    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    work = tmp_path_factory.mktemp("ui")
    home, officer = build_reference_home(work / "home")
    operator = issue_operator(home, officer)
    officer2 = issue_person(
        home, officer, "ids", "Jonas", "Weber", frozenset({Role.REGISTRATION_OFFICER})
    )
    # A published trust list whose service changed status, and a log with a checkpoint.
    home.log.create_key(secret=SecretSource(env=PASSPHRASE_ENV))
    listed = national_list_of(home)
    assert officer.certificate is not None
    home.trust.publish(
        "de.jws", sign_trust_list(listed, officer.signer, chain=[officer.certificate])
    )
    home.log.checkpoint()
    home.status.refresh()  # CRLs and OCSP answers, as `serve` makes them before it listens
    # A partner assessed in a first-contact session.
    home.exchange.create_session(
        "session-0123456789abcdef", role="initiator", partner_url="https://hayabusa.test", data={}
    )
    home.exchange.update_session(
        "session-0123456789abcdef",
        state="assessed",
        partner_org="NTRJP-1180301018771",
        partner_name="Hayabusa Sensor Components K.K.",
        data={"assessment": assessment_document()},
    )
    yield UiNode(home, api_app(NodeState(home)), officer, operator, officer2)
    home.close()


def national_list_of(home: Home) -> TrustList:
    """The home's scheme list, its root's service once suspended and granted again."""
    scheme = home.scheme("de")
    history = (
        StatusChange(ServiceStatus.GRANTED, NOW - timedelta(days=300)),
        StatusChange(ServiceStatus.SUSPENDED, NOW - timedelta(days=200)),
        StatusChange(ServiceStatus.GRANTED, NOW - timedelta(days=100)),
    )
    service = Service(
        name="Rheintal root",
        kind=ServiceKind.CA,
        certificates=(home.chain_of("de-root")[-1],),
        status_history=history,
        subject_kinds=tuple(SubjectKind),
        levels=scheme.levels,
    )
    provider = Provider(
        name="Rheintal Trust Services GmbH",
        country="DE",
        organization_identifier="VATDE-123456",
        services=(service,),
    )
    return TrustList(
        id="de",
        scheme=scheme,
        operator=Operator("Germany operator", "DE"),
        sequence=1,
        issued_at=NOW - timedelta(days=1),
        next_update=NOW + timedelta(days=30),
        providers=(provider,),
    )


def assessment_document() -> dict[str, Any]:
    policy = RequirementPolicy.load(shipped_policy("safety-component-supplier-high"))
    partner = Partner(
        organization="NTRJP-1180301018771",
        name="Hayabusa Sensor Components K.K.",
        identity="CN=Hayabusa",
        route="bridge",
        reference_level="itg-loa3",
    )
    return assess(policy, PartnerEvidence(partner), at=NOW, assessor="Muster").to_json()


# -- pages and roles ---------------------------------------------------------------------------


def test_ui_redirects_and_public_pages_need_no_login(ui: UiNode) -> None:
    anonymous = Browser(ui, None)
    redirect = anonymous.get("/ui", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/cas", "/ui/trust", "/ui/log", "/ui/provenance", "/ui/login"):
        page = anonymous.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert "not logged in" in text_of(page)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    cas = text_of(anonymous.get("/ui/cas"))
    assert "DE Industrial Root CA" in cas and "Rheintal Device CA" in cas
    assert "http://127.0.0.1:8080/pki/ids/ocsp" in anonymous.get("/ui/cas").text


def test_every_referenced_static_file_is_served_by_the_node(ui: UiNode) -> None:
    anonymous = Browser(ui, None)
    page = anonymous.get("/ui/").text
    assets = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', page)
    assert sorted(assets) == ["/ui/static/ui.css", "/ui/static/ui.js"]
    for asset in assets:
        answer = anonymous.get(asset)
        assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
    # Nothing from elsewhere: every URL a page loads is the node's own.
    assert not re.search(r'(?:href|src)="(?:https?:)?//(?!127\.0\.0\.1)', page)
    assert anonymous.get("/ui/static/../app.py").status_code == 404
    assert anonymous.get("/ui/static/nothing.js").status_code == 404


def test_restricted_pages_without_a_certificate_say_how_to_log_in(ui: UiNode) -> None:
    anonymous = Browser(ui, None)
    for path in ("/ui/identities", "/ui/requests", "/ui/partners", "/ui/messages"):
        page = anonymous.get(path)
        assert page.status_code == 401, path
        text = text_of(page)
        assert "log in with the TLS client certificate of your person identity" in text
        assert "PKCS#12" in text


def test_certificates_the_home_did_not_issue_or_revoked_cannot_log_in(ui: UiNode) -> None:
    stranger = self_signed(generate_private_key(KeyType.P256), "Mallory")
    page = Browser(ui, stranger).get("/ui/requests")
    assert page.status_code == 401
    assert "is not an identity issued by this home" in text_of(page)
    assert "certificate not accepted" in text_of(page)
    revoked = issue_person(
        ui.home, ui.officer, "ids", "Rita", "Revoked", frozenset({Role.REGISTRATION_OFFICER})
    )
    browser = Browser(ui, revoked)
    assert browser.get("/ui/requests").status_code == 200
    assert revoked.certificate is not None
    ui.home.status.revoke(format(revoked.certificate.serial_number, "x"), reason=Reason.SUPERSEDED)
    page = browser.get("/ui/requests")
    assert page.status_code == 401 and "is revoked" in text_of(page)


def test_pages_follow_the_roles_of_the_api(ui: UiNode) -> None:
    officer, operator = Browser(ui, ui.officer), Browser(ui, ui.operator)
    page = officer.get("/ui/identities")
    assert page.status_code == 200
    text = text_of(page)
    assert "Anna Schmidt" in text and "registration-officer" in text  # who is logged in
    assert "Otto Betrieb" in text  # the operator's identity is listed
    refused = officer.get("/ui/partners")
    assert refused.status_code == 403
    assert "may not see partners: that needs the operator role" in text_of(refused)
    assert operator.get("/ui/requests").status_code == 200
    partners = operator.get("/ui/partners")
    assert partners.status_code == 200
    assert "Hayabusa Sensor Components K.K." in text_of(partners)
    assert "reject" in text_of(partners)
    detail = operator.get("/ui/partners/session-0123456789abcdef")
    assert detail.status_code == 200 and "<svg" in detail.text
    full = operator.get("/ui/partners/session-0123456789abcdef/assessment")
    assert (
        full.status_code == 200 and "default-src 'none'" in full.headers["content-security-policy"]
    )
    assert "Hayabusa" in full.text
    assert operator.get("/ui/messages").status_code == 200
    assert operator.get("/ui/contracts").status_code == 200


def test_the_decision_form_is_for_registration_officers_only(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Form GmbH")
    officer_page = Browser(ui, ui.officer).get(f"/ui/requests/{request_id}")
    assert 'id="decide"' in officer_page.text
    key = browser_key(ui.officer.certificate)  # type: ignore[arg-type]
    assert key is not None and key.curve == "P-256" and key.hash == "SHA-256"
    assert f'data-x="{key.x}"' in officer_page.text
    operator_page = Browser(ui, ui.operator).get(f"/ui/requests/{request_id}")
    assert operator_page.status_code == 200 and 'id="decide"' not in operator_page.text
    statement = Browser(ui, ui.operator).get(f"/ui/requests/{request_id}/statement")
    assert statement.status_code == 403
    assert "needs the registration-officer role" in statement.json()["error"]


def test_detail_pages_and_what_is_not_there(ui: UiNode) -> None:
    anonymous, officer = Browser(ui, None), Browser(ui, ui.officer)
    entry = anonymous.get("/ui/log/entries/0")
    assert entry.status_code == 200 and "certificate.issued" in text_of(entry)
    missing = anonymous.get("/ui/log/entries/100000")
    assert missing.status_code == 404 and "the log has no entry 100000" in text_of(missing)
    assert ui.officer.certificate is not None
    serial = format(ui.officer.certificate.serial_number, "x")
    page = officer.get(f"/ui/identities/ids/{serial}")
    assert page.status_code == 200 and "BEGIN CERTIFICATE" in page.text
    assert anonymous.get(f"/ui/identities/ids/{serial}").status_code == 401
    assert officer.get("/ui/identities/ids/abcdef").status_code == 404
    assert officer.get("/ui/requests/no-such-request").status_code == 404
    assert anonymous.get("/ui/provenance/HPS200-000001").status_code == 404


def test_user_input_is_escaped(ui: UiNode) -> None:
    officer = Browser(ui, ui.officer)
    page = officer.get("/ui/identities", params={"holder": '"><script>alert(1)</script>'})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    request_id = pending_request(ui.home, "<b>Bold</b> & Co")
    shown = officer.get(f"/ui/requests/{request_id}").text
    assert "<b>Bold</b>" not in shown and "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in shown


# -- the officer's decision ----------------------------------------------------------------------


def prepared(browser: Browser, request_id: str, **query: str) -> tuple[bytes, str]:
    """The statement the node prepares, and the form token of the request page."""
    page = browser.get(f"/ui/requests/{request_id}")
    answer = browser.get(f"/ui/requests/{request_id}/statement", params=query)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    statement = base64.b64decode(body["statement"])
    assert body["text"] == statement.decode()
    return statement, csrf_of(page)


def decision_form(csrf: str, statement: bytes, signature: str) -> dict[str, str]:
    """The fields the request page's script posts: token, statement and signature (base64)."""
    return {"csrf": csrf, "statement": base64.b64encode(statement).decode(), "signature": signature}


def webcrypto_signature(holder: Holder, statement: bytes) -> str:
    """What WebCrypto's ECDSA sign returns (r || s), base64."""
    return base64.b64encode(jose_signature(holder.signer, statement)).decode()


def decide(
    ui: UiNode, holder: Holder, request_id: str, decision: str, reason: str
) -> tuple[Browser, httpx.Response]:
    """``holder`` logs in, signs the statement the node prepares for ``decision`` of the
    request with their own key (as the page's WebCrypto does) and posts it."""
    officer = Browser(ui, holder)
    statement, csrf = prepared(officer, request_id, decision=decision, reason=reason)
    answer = officer.post_form(
        f"/ui/requests/{request_id}/decision",
        decision_form(csrf, statement, webcrypto_signature(holder, statement)),
    )
    return officer, answer


def test_an_officer_approves_with_a_signature_made_as_webcrypto_makes_it(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Approved GmbH")
    officer, answer = decide(ui, ui.officer, request_id, "approve", "checked in person")
    assert answer.status_code == 303, text_of(answer)
    assert answer.headers["location"] == f"/ui/requests/{request_id}?decided=approve"
    page = officer.get(answer.headers["location"])
    info = ui.home.request(request_id)
    assert info.state == "issued" and info.decision_reason == "checked in person"
    (issued,) = ui.home.certificates(holder="Approved GmbH")
    text = text_of(page)
    assert "issued" in text and issued.serial in text and "Anna Schmidt" in text
    # The audit trail names the officer, as for the signed API.
    actions = {e.action: e.actor_display for e in ui.home.audit_events(object_id=issued.serial)}
    assert "Anna Schmidt" in actions["certificate.issue"]


def test_an_officer_rejects_with_a_reason(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Rejected GmbH")
    officer, answer = decide(ui, ui.officer2, request_id, "reject", "no register extract")
    assert answer.status_code == 303
    info = ui.home.request(request_id)
    assert info.state == "rejected" and info.decision_reason == "no register extract"
    assert "no register extract" in text_of(officer.get(f"/ui/requests/{request_id}"))


def test_a_decision_signed_with_another_key_is_refused(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Wrong Key GmbH")
    officer = Browser(ui, ui.officer)
    statement, csrf = prepared(officer, request_id)
    for signature in (
        webcrypto_signature(new_holder(), statement),  # another key
        webcrypto_signature(ui.officer2, statement),  # another officer's key
        base64.b64encode(b"\x01" * 64).decode(),  # garbage of the right length
        base64.b64encode(b"\x01" * 10).decode(),  # not even r || s
    ):
        answer = officer.post_form(
            f"/ui/requests/{request_id}/decision",
            decision_form(csrf, statement, signature),
        )
        assert answer.status_code == 400, text_of(answer)
        text = text_of(answer)
        assert "does not verify with the certificate of" in text or "the signature has 10" in text
    assert ui.home.request(request_id).state == "pending"


def test_the_signed_statement_must_be_for_this_request_and_the_signer_logged_in(
    ui: UiNode,
) -> None:
    first, second = pending_request(ui.home, "First GmbH"), pending_request(ui.home, "Second GmbH")
    officer = Browser(ui, ui.officer)
    statement, csrf = prepared(officer, first)
    answer = officer.post_form(
        f"/ui/requests/{second}/decision",
        decision_form(csrf, statement, webcrypto_signature(ui.officer, statement)),
    )
    assert answer.status_code == 400
    assert f"the decision is for request {first}, not {second}" in text_of(answer)
    # Officer 2 logged in cannot send officer 1's signature: the signer must be the one logged in.
    other = Browser(ui, ui.officer2)
    other_csrf = csrf_of(other.get(f"/ui/requests/{first}"))
    answer = other.post_form(
        f"/ui/requests/{first}/decision",
        decision_form(other_csrf, statement, webcrypto_signature(ui.officer, statement)),
    )
    assert answer.status_code == 400 and "does not verify" in text_of(answer)
    assert ui.home.request(first).state == ui.home.request(second).state == "pending"


def test_state_changing_posts_are_protected_against_cross_site_forgery(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Forged GmbH")
    officer = Browser(ui, ui.officer)
    statement, csrf = prepared(officer, request_id)
    form = decision_form(csrf, statement, webcrypto_signature(ui.officer, statement))
    path = f"/ui/requests/{request_id}/decision"
    # The token on officer 2's page is bound to officer 2's certificate.
    other_token = csrf_of(Browser(ui, ui.officer2).get(f"/ui/requests/{request_id}"))
    cases: list[tuple[dict[str, str], dict[str, str], str]] = [
        ({**form, "csrf": ""}, {"Origin": ORIGIN}, "does not belong to your certificate"),
        ({**form, "csrf": other_token}, {"Origin": ORIGIN}, "does not belong"),
        (form, {"Origin": "https://evil.test"}, "came from https://evil.test"),
        (form, {"Sec-Fetch-Site": "cross-site"}, "came from another site"),
        (form, {}, "without an Origin header"),
    ]
    for sent, headers, reason in cases:
        answer = officer.post_form(path, sent, headers=headers)
        assert answer.status_code == 403, (headers, text_of(answer))
        assert reason in text_of(answer)
    assert ui.home.request(request_id).state == "pending"
    # An operator cannot decide at all, token or not.
    assert ui.operator.certificate is not None
    operator_token = CsrfGuard.for_home(ui.home).token(ui.operator.certificate, NOW)
    answer = Browser(ui, ui.operator).post_form(path, {**form, "csrf": operator_token})
    assert answer.status_code == 403 and "registration-officer role" in text_of(answer)
    assert ui.home.request(request_id).state == "pending"


# -- the page data and the helpers, without HTTP ----------------------------------------------


def test_page_data_functions(ui: UiNode) -> None:
    rows = {row.info.slug: row for row in data.ca_rows(ui.home)}
    assert set(rows) == {"de-root", "ids", "devices", "staff"}
    ids = rows["ids"]
    assert ids.crl is not None and not ids.crl.overdue
    assert ids.ocsp.answers > 0 and ids.ocsp.responder is not None
    assert ids.urls["OCSP"].endswith("/pki/ids/ocsp")
    trust = data.trust_page(ui.home)
    (published,) = trust.published
    assert published.name == "de.jws" and not published.is_lotl
    assert published.document is not None
    service = published.document.providers[0].services[0]  # type: ignore[union-attr]
    assert [c.status.value for c in service.status_history] == ["granted", "suspended", "granted"]
    assert trust.lotl is None
    log = data.log_page(ui.home)
    assert log.latest is not None and log.checkpoints[0].size == log.latest.checkpoint.size
    assert log.entries[0].index == log.size - 1
    assert any("CN=Otto Betrieb" in e.about for e in log.entries)  # a certificate's subject
    older = data.log_page(ui.home, before=1)
    assert [e.index for e in older.entries] == [0] and older.older is None
    kind = data.log_entry(ui.home, 0)[0].kind.value
    assert kind in {"certificate.issued", "trust-list.published"}
    partner = data.partner_detail(ui.home, "session-0123456789abcdef")
    assert partner.assessment is not None and partner.assessment["decision"] == "reject"
    assert data.components(ui.home) == []


def test_statements_and_signatures_for_the_browser(ui: UiNode) -> None:
    request_id = pending_request(ui.home, "Statement GmbH")
    decision = prepare_decision(ui.home, request_id, "approve", "  fine  ")
    assert decision.reason == "fine" and decision.at == ui.home.now()
    with pytest.raises(InputError, match="must be approve or reject"):
        prepare_decision(ui.home, request_id, "maybe")
    with pytest.raises(InputError, match="at most 500"):
        prepare_decision(ui.home, request_id, "reject", "x" * 501)
    assert ui.officer.certificate is not None
    raw = jose_signature(ui.officer.signer, decision.payload())
    der = der_signature(ui.officer.certificate, raw)
    public = ui.officer.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, decision.payload(), ec.ECDSA(hashes.SHA256()))  # raises if wrong
    with pytest.raises(ApprovalError, match="has 63 bytes"):
        der_signature(ui.officer.certificate, raw[:-1])


def test_form_tokens_and_origins() -> None:
    guard = CsrfGuard(b"k" * 32)
    mine = self_signed(generate_private_key(KeyType.P256), "mine")
    theirs = self_signed(generate_private_key(KeyType.P256), "theirs")
    token = guard.token(mine, NOW)
    guard.check(token, mine, NOW + timedelta(hours=7))
    with pytest.raises(AccessDeniedError, match="does not belong"):
        guard.check(token, theirs, NOW)
    with pytest.raises(AccessDeniedError, match="expired"):
        guard.check(token, mine, NOW + timedelta(hours=9))
    with pytest.raises(AccessDeniedError, match="does not belong"):
        CsrfGuard(b"o" * 32).check(token, mine, NOW)
    check_same_origin({"origin": ORIGIN, "sec-fetch-site": "same-origin"}, ORIGIN)
    check_same_origin({"sec-fetch-site": "same-origin"}, ORIGIN)
    with pytest.raises(AccessDeniedError, match="another site"):
        check_same_origin({"origin": ORIGIN, "sec-fetch-site": "same-site"}, ORIGIN)


def test_the_csrf_secret_is_kept_in_the_home(ui: UiNode) -> None:
    path = ui.home.path / "ui" / "csrf-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    token = CsrfGuard.for_home(ui.home).token(ui.officer.certificate, NOW)  # type: ignore[arg-type]
    CsrfGuard.for_home(ui.home).check(token, ui.officer.certificate, NOW)  # type: ignore[arg-type]


# -- templates with what the fast fixtures cannot make: contracts, messages, provenance ------


def render(template: str, **context: Any) -> str:
    """A page as the router renders it, for a logged-out viewer, as text."""
    page = (
        environment()
        .get_template(template)
        .render(node="test", viewer=Viewer(), navigation=[], csrf="", now=NOW, **context)
    )
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def session_info(**changes: Any) -> SessionInfo:
    base = SessionInfo(
        id="session-0123456789abcdef",
        role="initiator",
        partner_org="NTRJP-3180001012345",
        partner_name="Hayabusa <Sensor> K.K.",
        partner_url="https://hayabusa.test",
        state="concluded",
        reason=None,
        contract_id="C-2026-001",
        data={},
        created_at=NOW,
        updated_at=NOW,
        steps=("hello", "presentation", "profile", "propose", "conclude"),
    )
    return replace(base, **changes)


def test_contract_pages_render_terms_signatures_and_timestamps() -> None:
    terms = ContractTerms.load(Path(demo.__file__).parent / "contract-terms.json")
    signature = SignatureReport(
        field="customer", signer="CN=Erika Muster", organization_identifier="VATDE-123456789",
        party_role="customer", authorized=True, bottom_line=True, intact=True, valid=True,
        trusted=True, signing_time=NOW, timestamp_valid=True, modification_level="NONE",
        coverage="ENTIRE_REVISION", problems=(),
    )  # fmt: skip
    refused = replace(signature, field="supplier", problems=("not <trusted>",))
    report = ContractReport(
        terms, (signature, refused), (DocumentTimestampReport("archive", NOW, True, "NONE"),), NOW
    )
    page = render(
        "contract.html",
        detail=data.ContractDetail(session_info(), terms, 12345, report),
    )
    assert terms.id in page and "CN=Erika Muster" in page and "not <trusted>" in page
    assert "document timestamp" in page and "incomplete" in page
    listed = render(
        "contracts.html",
        rows=[data.ContractRow(session_info(), terms), data.ContractRow(session_info(), None, "x")],
    )
    assert terms.title in listed and "C-2026-001" in listed


def test_message_page_renders_verdicts_without_content() -> None:
    message = {
        "id": "m1", "direction": "in", "session": "s", "contract": "C-2026-001",
        "from": "NTRJP-3180001012345", "to": "VATDE-123456789", "sender": "CN=line",
        "element": "test-report", "purpose": "quality", "name": "report.pdf",
        "accepted": False, "reason": "purpose <marketing> not allowed", "policies": [],
        "at": "2026-06-01T12:00:00+00:00", "token_digest": "ab",
    }  # fmt: skip
    page = render("messages.html", rows=[message], direction="")
    assert "refused" in page and "purpose <marketing> not allowed" in page
    assert "received" in page and "report.pdf" in page


def test_component_page_renders_history_and_verification() -> None:
    w = world()  # the provenance tests' supply chain
    records = tuple(happy(w))
    component = records[0].statement.statement.component.id
    report = verify_chain(list(records), component=component, resolve=w.resolve)
    assert report.valid
    page = render(
        "component.html", page=data.ComponentPage(component, records, None), assessments={}
    )
    assert "manufactured" in page and "firmware-updated" in page
    assert "Verify the chain now" in page
    verification = ProvenanceVerification(report, ("manufactured: in this log at 0",), ())
    verified = render(
        "component.html",
        page=data.ComponentPage(component, records, verification),
        assessments={},
    )
    assert "chain valid" in verified and "Hayabusa" in verified


# -- the security review's findings: each test failed before its fix ---------------------------


@dataclass(frozen=True)
class Chain:
    """A component's logged statements and their verification, as the provenance tests make."""

    records: tuple[LoggedStatement, ...]
    verification: ProvenanceVerification
    #: The organization acting in the chain that the node has assessed.
    acting: str


@pytest.fixture(scope="module")
def chain() -> Chain:
    w = world()
    records = tuple(happy(w))
    component = records[0].statement.statement.component.id
    report = verify_chain(list(records), component=component, resolve=w.resolve)
    acting = next(e.organization.name for e in report.timeline if e.organization is not None)
    verification = ProvenanceVerification(
        report,
        ("manufactured: in this log at 0",),
        (),
        {acting: {"session": "session-0123456789abcdef", "decision": "reject", "score": 12.0}},
    )
    return Chain(records, verification, acting)


class Verifications:
    """A stand-in for ``home.provenance``: any component has ``chain``'s statements; each
    verification can be held until released, and the calls are counted."""

    def __init__(self, chain: Chain, *, hold: int = 0) -> None:
        self.chain = chain
        self.calls: list[str] = []
        self.hold = hold
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def history(self, component: str) -> list[LoggedStatement]:
        return list(self.chain.records)

    def verify(self, component: str) -> ProvenanceVerification:
        self.calls.append(component)
        if len(self.calls) <= self.hold:
            self.entered.release()
            assert self.release.wait(30), "the test never released the verification"
        return self.chain.verification


def test_a_public_component_page_does_not_show_our_assessments_of_partners(
    ui: UiNode, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1: the assessments of partners are for the business roles (the partners page),
    not for anyone who asks a component page to verify its chain."""
    fake = Verifications(chain)
    monkeypatch.setattr(ui.home.provenance, "history", fake.history)
    monkeypatch.setattr(ui.home.provenance, "verify", fake.verify)
    path = "/ui/provenance/finding-1-component?verify=1"
    public = Browser(ui, None).get(path)
    assert public.status_code == 200 and "chain valid" in text_of(public)
    assert chain.acting in text_of(public)  # the statements are public ...
    assert "our assessment" not in text_of(public)  # ... our verdict on their signer is not
    assert "our assessment" not in text_of(Browser(ui, ui.officer).get(path))
    operator = text_of(Browser(ui, ui.operator).get(path))
    assert "our assessment: reject" in operator
    assert fake.calls == ["finding-1-component"]  # one verification, reused for the next


def test_anonymous_chain_verifications_are_bounded(
    ui: UiNode, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2: a verification resolves every signer (network, CPU) and anyone may ask for
    one; concurrent requests for the same chain ran it once each, and any number ran at once."""
    fake = Verifications(chain, hold=2)
    monkeypatch.setattr(ui.home.provenance, "history", fake.history)
    monkeypatch.setattr(ui.home.provenance, "verify", fake.verify)
    anonymous = Browser(ui, None)

    async def scenario() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(transport=anonymous.transport, base_url=ORIGIN) as client:
            held = [
                asyncio.create_task(client.get(f"/ui/provenance/finding-2-{n}?verify=1"))
                for n in ("a", "b")
            ]
            for _ in held:
                assert await asyncio.to_thread(fake.entered.acquire, True, 30)
            # While both run: the same chain again, and a third chain.
            more = await asyncio.gather(
                *(client.get(f"/ui/provenance/finding-2-{n}?verify=1") for n in "aac")
            )
            fake.release.set()
            return list(await asyncio.gather(*held)), list(more)

    held, more = asyncio.run(scenario())
    assert [r.status_code for r in held] == [200, 200]
    assert all("chain valid" in text_of(r) for r in held)
    for answer in more:
        assert answer.status_code == 503 and answer.headers["retry-after"], text_of(answer)
        assert "not verified now" in text_of(answer) and "Verify the chain now" in text_of(answer)
    assert sorted(fake.calls) == ["finding-2-a", "finding-2-b"]
    # Done: the result is reused, and the next chain is verified.
    assert "chain valid" in text_of(anonymous.get("/ui/provenance/finding-2-a?verify=1"))
    assert "chain valid" in text_of(anonymous.get("/ui/provenance/finding-2-c?verify=1"))
    assert sorted(fake.calls) == ["finding-2-a", "finding-2-b", "finding-2-c"]


def test_the_public_log_page_does_not_name_the_partners_whose_logs_we_follow(
    ui: UiNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 3: a company node follows the log of every partner it contacts; the list named
    them (organization and identifier) to anyone, while the partners page is restricted."""
    peer = Peer(
        origin="hayabusa.test/log",
        key=None,  # type: ignore[arg-type]
        url="https://hayabusa.test/log/v1",
        size=7,
        root=b"\x00" * 32,
        note=b"",
        updated_at=NOW,
        organization={"name": "Secret Partner K.K.", "identifier": "NTRJP-1180301018771"},
    )
    monkeypatch.setattr(ui.home.log, "peers", lambda: [peer])
    public = text_of(Browser(ui, None).get("/ui/log"))
    assert "Transparency log" in public and "Secret Partner K.K." not in public
    assert "hayabusa.test/log" not in public
    assert "Secret Partner K.K." not in text_of(Browser(ui, ui.officer).get("/ui/log"))
    assert "Secret Partner K.K." in text_of(Browser(ui, ui.operator).get("/ui/log"))


def test_the_public_component_list_is_bounded_and_searchable(ui: UiNode) -> None:
    """Finding 4: the provenance page listed every component of the node in one page (one
    production batch makes thousands), for anyone, on every view."""
    many = data.PAGE_ROWS + 5
    rows = [
        {"digest": f"{n:064x}", "component": f"SN-{n:05d}", "event": "manufactured", "idx": 0,
         "origin": "test", "origin_idx": 0, "bundle": "{}", "receipt": None, "at": NOW,
         "previous": ""}
        for n in range(many)
    ]  # fmt: skip
    with ui.home.engine.begin() as conn:
        conn.execute(insert(t.provenance_statements), rows)
    try:
        anonymous = Browser(ui, None)
        page = anonymous.get("/ui/provenance")
        assert page.status_code == 200
        assert page.text.count('href="/ui/provenance/SN-') == data.PAGE_ROWS
        assert f"the first {data.PAGE_ROWS}" in text_of(page)
        found = anonymous.get("/ui/provenance", params={"q": "SN-0049"})
        assert re.findall(r'href="/ui/provenance/(SN-\d+)"', found.text) == [
            f"SN-0049{n}" for n in range(10)
        ]
        assert data.components(ui.home, prefix="SN-%") == []  # a prefix, not a pattern
    finally:
        with ui.home.engine.begin() as conn:
            conn.execute(delete(t.provenance_statements).where(t.provenance_statements.c.idx == 0))


def company_person(organization: str, kind: SubjectKind = SubjectKind.PERSON) -> x509.Certificate:
    """A certificate of ``kind`` naming ``organization`` (the stand-in resolver judges it)."""
    key = generate_private_key(KeyType.P256)
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, f"Someone of {organization}"),
            x509.NameAttribute(ID_AT_ORGANIZATION_IDENTIFIER, organization),
        ]
    )
    return self_signed_certificate(
        FileSigner(key),
        name,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=1),
        extensions=((subject_kind_extension(kind), False),),
    )


class CompanyNode:
    """A stand-in company home: it issued no identity; its exchange resolves people."""

    def __init__(self, organization: str) -> None:
        self.resolved: list[x509.Certificate] = []
        self.refuse: str | None = None
        self.exchange = SimpleNamespace(
            configured=True, organization=lambda: organization, resolve_party=self.resolve_party
        )

    def verify_identity(self, certificate: x509.Certificate) -> None:
        raise ValidationError(f"{certificate.subject.rfc4514_string()} is not issued here")

    def resolve_party(self, chain: list[x509.Certificate], **_: Any) -> tuple[Party, None]:
        self.resolved.append(chain[0])
        if self.refuse is not None:
            raise ExchangeError(self.refuse)
        organization = str(
            chain[0].subject.get_attributes_for_oid(ID_AT_ORGANIZATION_IDENTIFIER)[0].value
        )
        return Party(organization, "Muster", "bridge", "itg-loa2", "ab", "person"), None


def test_a_company_node_resolves_only_people_who_claim_its_organization() -> None:
    """Finding 5: every person certificate under the node's anchors (any organization of both
    schemes) made the node resolve it afresh (path building, CRL and OCSP fetches) on every
    request, public pages included, before it looked at the organization it names."""
    company = CompanyNode(MUSTER.identifier)
    home = cast(Home, company)
    stranger = viewer_of(home, company_person("VATDE-999999999"))
    assert not stranger.logged_in
    assert stranger.problem is not None
    assert f"not to this node's organization {MUSTER.identifier}" in stranger.problem
    assert company.resolved == []  # refused on what the certificate says, before any fetch
    member = viewer_of(home, company_person(MUSTER.identifier))
    assert member.logged_in and member.member and len(company.resolved) == 1
    assert member.has(BUSINESS) and not member.has(STAFF) and not member.has(OFFICERS)
    company.refuse = "the person (CN=...) is not trusted: revoked"
    revoked = viewer_of(home, company_person(MUSTER.identifier))
    assert not revoked.logged_in and revoked.problem == company.refuse


def test_error_pages_for_impossible_log_indexes(ui: UiNode) -> None:
    """Finding 6: an index beyond what the database stores was an unhandled error (500)."""
    anonymous = Browser(ui, None)
    for index in ("99999999999999999999999", "-1"):
        page = anonymous.get(f"/ui/log/entries/{index}")
        assert page.status_code == 404 and "the log has no entry" in text_of(page)


def test_the_ui_sends_nobody_to_pages_that_run_scripts_of_other_sites(ui: UiNode) -> None:
    """Finding 7: the overview linked the API's /docs (Swagger UI), a page of the same origin
    that loads its script from a CDN; the assessment page allows no form or base either."""
    overview = Browser(ui, None).get("/ui/")
    assert 'href="/docs"' not in overview.text
    full = Browser(ui, ui.operator).get("/ui/partners/session-0123456789abcdef/assessment")
    policy = full.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'none'" in policy
    assert "base-uri 'none'" in policy


def test_the_log_page_counts_the_cosignatures_of_the_checkpoints_it_shows_only(
    ui: UiNode,
) -> None:
    """Finding 4 (continued): the log page counted every cosignature ever kept, on every view."""
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(args[2])

    event.listen(ui.home.engine, "before_cursor_execute", capture)
    try:
        page = data.log_page(ui.home)
    finally:
        event.remove(ui.home.engine, "before_cursor_execute", capture)
    assert page.checkpoints
    counted = [s for s in statements if "FROM log_cosignatures" in s]
    assert counted and all("WHERE" in s for s in counted), counted


def test_the_trust_page_does_not_show_where_the_home_is(ui: UiNode) -> None:
    """Finding 8: a list that fails verification is named by its file, with the home's
    absolute path, on a page anyone may open."""
    lotl = ui.home.trust.folder / "lotl.jws"
    assert not lotl.exists()
    lotl.write_bytes(b"not a signed list")
    try:
        assert str(ui.home.path) in " ".join(ui.home.trust.snapshot().problems)
        page = text_of(Browser(ui, None).get("/ui/trust"))
        assert "LOTL from HOME/trust/lotl.jws" in page
        assert str(ui.home.path) not in page
    finally:
        lotl.unlink()
