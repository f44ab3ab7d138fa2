"""The initiator's side of first contact, and sending secure messages to a partner node.

:class:`PartnerClient` talks HTTPS to one partner node. Its TLS stack does not judge the
partner's certificate (no TLS stack follows bridges or trust lists); instead the client

- fetches the node's signed description, resolves its signer (the partner's organization
  identity) and the TLS certificate the connection presented with our trust resolver, requires
  both to belong to the same organization and the description to name that TLS certificate;
- then pins that certificate: every later TLS handshake with another certificate fails before a
  byte of a request is sent;
- signs every request with our identity (RFC 9421) and accepts only answers that are envelopes
  signed by the partner's organization identity, addressed to us and bound to the request.

:func:`onboard` drives a session through its steps, storing each step's request before it is sent
and its answer when it arrives, so that a run interrupted anywhere (a node killed, a network
error) continues with :func:`onboard` on the same session id: a completed step is not repeated,
an interrupted one is sent again with the same request, which the partner answers as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustbridge.assessment import RequirementPolicy
from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import (
    AccessDeniedError,
    InputError,
    TrustbridgeError,
)
from trustbridge.exchange.contract import (
    ContractTerms,
    archive_contract,
    contract_terms,
    render_contract,
    sign_contract,
)
from trustbridge.exchange.messages import seal_message, verify_receipt
from trustbridge.exchange.protocol import (
    DISCOVERY_TYPE,
    RESPONSE_TYPE,
    WELL_KNOWN,
    Challenge,
    Envelope,
    ExchangeError,
    Step,
    StepOrderError,
    check_selection,
    new_nonce,
    open_envelope,
)
from trustbridge.home import Home
from trustbridge.home.exchange import (
    FINAL_STATES,
    Party,
    SessionInfo,
    decision_reason,
    decode_pdf,
    fetch_crls,
    pdf_certificates,
    request_digest,
    signer_chains,
)
from trustbridge.ledger.note import LogKey
from trustbridge.node.client import ClosingClient, NodeError, error_from_response
from trustbridge.node.httpsig import sign_request
from trustbridge.node.partner import JOSE, MESSAGES, SESSIONS
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.signers import Signer

__all__ = [
    "Discovery",
    "OnboardResult",
    "PartnerClient",
    "SentMessage",
    "http_timestamper",
    "onboard",
    "send_message",
]

TIMESTAMP_QUERY = "application/timestamp-query"
_TLS_KINDS = frozenset({SubjectKind.SOFTWARE, SubjectKind.ORGANIZATION, SubjectKind.MACHINE})


def _fingerprint(der: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()


@dataclass
class _Pin:
    """What the TLS layer checks at every handshake: the pinned certificate, once known."""

    sha256: str | None = None
    seen: bytes | None = None


def _pinned_context(pin: _Pin) -> ssl.SSLContext:
    """A client TLS context that leaves the certificate to us, and enforces ``pin``."""

    class _PinnedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            der = self.getpeercert(binary_form=True)
            if der is None:
                raise ssl.SSLCertVerificationError("the partner node presented no certificate")
            pin.seen = der
            if pin.sha256 is not None and _fingerprint(der) != pin.sha256:
                raise ssl.SSLCertVerificationError(
                    "the partner node's TLS certificate is not the one its signed description "
                    "names (pinned)"
                )

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # judged by our resolver and the pin, not by OpenSSL
    context.sslsocket_class = _PinnedSocket
    return context


@dataclass(frozen=True)
class Discovery:
    """A partner node's verified description."""

    url: str
    party: Party
    body: dict[str, Any]
    token: str
    tls_sha256: str
    agreement: tuple[x509.Certificate, ...]


class PartnerClient(ClosingClient):
    """Signed requests to one partner node, verified answers, a pinned TLS certificate."""

    def __init__(
        self,
        base_url: str,
        *,
        home: Home,
        signer: Signer,
        chain: Sequence[x509.Certificate],
        pin: str | None = None,
        partner: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not base_url.startswith("https://"):
            raise InputError(f"the partner URL {base_url!r} must be https://HOST:PORT")
        self.base_url = base_url.rstrip("/")
        self.home = home
        self.signer = signer
        self.chain = tuple(chain)
        self.partner = partner
        self._pin = _Pin(pin)
        self._http = httpx.Client(verify=_pinned_context(self._pin), timeout=timeout)
        # One resolver per client: a fresh one for every run of a session (a revocation shows
        # at the next run), whose answers a client reuses until the CRLs they rest on are due.
        self._resolver = home.exchange.resolver()

    def _send(
        self, method: str, path: str, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        try:
            return self._http.request(
                method, self.base_url + path, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise NodeError(
                f"cannot reach the partner node {self.base_url}: {exc}",
                hint="is the partner's node running (trustbridge serve)?",
            ) from None

    def discover(self) -> Discovery:
        """Fetch, verify and resolve the partner's description; pin its TLS certificate."""
        exchange = self.home.exchange
        nonce = new_nonce()
        response = self._send("GET", f"{WELL_KNOWN}?nonce={nonce}", b"", {})
        if response.status_code != 200:
            raise _error(response)
        envelope = open_envelope(
            response.text,
            typ=DISCOVERY_TYPE,
            at=self.home.now(),
            request=nonce,
            source=f"the description of {self.base_url}",
        )
        party, _ = exchange.resolve_party(
            envelope.chain, resolver=self._resolver, what=f"the node at {self.base_url}"
        )
        body = envelope.body if isinstance(envelope.body, dict) else {}
        organization = (body.get("organization") or {}).get("identifier")
        if organization != party.organization or envelope.claims.get("iss") != organization:
            raise ExchangeError(
                f"the description of {self.base_url} is signed by {party.organization} but "
                f"describes {organization!r}"
            )
        if self.partner is not None and party.organization != self.partner:
            raise ExchangeError(
                f"{self.base_url} is now {party.organization}, not the partner {self.partner}"
            )
        api = (body.get("endpoints") or {}).get("api")
        if api is None or api.rstrip("/") != self.base_url:
            raise ExchangeError(
                f"{self.base_url} describes its API as {api!r}: the description is not this node's"
            )
        seen = self._pin.seen
        named = (body.get("tls") or {}).get("sha256")
        if seen is None or named is None or _fingerprint(seen) != named:
            raise ExchangeError(
                f"the TLS certificate of {self.base_url} is not the one its signed description "
                "names"
            )
        tls_party, _ = exchange.resolve_party(
            (x509.load_der_x509_certificate(seen),),
            kinds=_TLS_KINDS,
            resolver=self._resolver,
            what=f"the TLS certificate of {self.base_url}",
        )
        _require_server_auth(x509.load_der_x509_certificate(seen))
        if tls_party.organization != party.organization:
            raise ExchangeError(
                f"the TLS certificate of {self.base_url} belongs to {tls_party.organization}, "
                f"not to {party.organization}"
            )
        self._pin.sha256 = named
        self.partner = party.organization
        agreement = tuple(
            x509.load_der_x509_certificate(base64.b64decode(c))
            for c in body.get("key_agreement") or []
        )
        return Discovery(self.base_url, party, body, response.text, named, agreement)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Envelope:
        """Send one signed request; return the partner's verified envelope."""
        if self._pin.sha256 is None or self.partner is None:
            raise InputError("discover the partner node before calling it")
        content = raw if raw is not None else (b"" if body is None else _json(body))
        headers = sign_request(
            method=method,
            url=self.base_url + path,
            body=content,
            signer=self.signer,
            chain=self.chain,
            at=self.home.now(),
            content_type=content_type,
        )
        if content:
            headers["content-type"] = content_type
        response = self._send(method, path, content, headers)
        if response.status_code != 200:
            raise _error(response)
        nonce = _signature_nonce(headers)
        envelope = open_envelope(
            response.text,
            typ=RESPONSE_TYPE,
            at=self.home.now(),
            audience=_organization_of(self.chain[0]),
            request=nonce,
            source=f"the answer of {self.base_url} to {method} {path}",
        )
        party, _ = self.home.exchange.resolve_party(
            envelope.chain, resolver=self._resolver, what=f"the answer of {self.base_url}"
        )
        if party.organization != self.partner:
            raise ExchangeError(
                f"the answer to {method} {path} is signed by {party.organization}, not by the "
                f"partner {self.partner}"
            )
        return envelope


def _require_server_auth(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise ExchangeError("the partner's TLS certificate has no extended key usage") from None
    if x509.oid.ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        raise ExchangeError("the partner's TLS certificate is not for TLS servers (serverAuth)")


def _organization_of(certificate: x509.Certificate) -> str:
    return organization_identifier_of(certificate) or ""


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _signature_nonce(headers: dict[str, str]) -> str:
    match = re.search(r';nonce="([^"]+)"', headers["signature-input"])
    if match is None:
        raise InputError("the signed request carries no nonce")
    return match.group(1)


class RefusedError(AccessDeniedError):
    """The partner refused a request; for a message, with its signed receipt."""

    receipt: str | None = None


def _error(response: httpx.Response) -> TrustbridgeError:
    """A partner node's refusal; a refused message's error carries the signed receipt."""
    error = error_from_response(
        response,
        prefix="the partner node refused ",
        errors={403: RefusedError, 409: StepOrderError},
        client_error=ExchangeError,
    )
    if isinstance(error, RefusedError):
        try:
            receipt = response.json().get("receipt")
        except (ValueError, AttributeError):
            receipt = None
        error.receipt = receipt if isinstance(receipt, str) else None
    return error


def http_timestamper(url: str, *, timeout: float = 30.0) -> Callable[[bytes], bytes]:
    """An RFC 3161 client over HTTP: TimeStampReq DER in, TimeStampResp DER out."""

    def post(request: bytes) -> bytes:
        try:
            response = httpx.post(
                url, content=request, headers={"content-type": TIMESTAMP_QUERY}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise NodeError(f"cannot reach the TSA {url}: {exc}") from None
        if response.status_code != 200:
            raise NodeError(f"the TSA {url} answered HTTP {response.status_code}")
        return response.content

    return post


# -- the session driver -------------------------------------------------------------------------


@dataclass
class OnboardResult:
    """Where a session stands after a run of :func:`onboard`."""

    session: SessionInfo
    #: Steps completed in this run.
    done: list[str] = field(default_factory=list)
    #: Why the run stopped before the session ended (waiting for the partner, --until ...).
    waiting: str | None = None


def _own_url(home: Home) -> str:
    config = home.config
    return f"https://{config.host}:{config.https_port}"


def onboard(
    home: Home,
    *,
    partner_url: str | None = None,
    session_id: str | None = None,
    terms: ContractTerms | None = None,
    signatory: tuple[Signer, Sequence[x509.Certificate]] | None = None,
    until: Step | None = None,
    policy: RequirementPolicy | None = None,
    say: Callable[[str], None] = lambda _text: None,
) -> OnboardResult:
    """Start (``partner_url``) or continue (``session_id``) first contact; see the module doc.

    ``policy`` assesses the partner instead of the node's configured requirement policy.
    """
    exchange = home.exchange
    settings = exchange.settings()
    if session_id is None:
        if partner_url is None:
            raise InputError("name the partner node (https://HOST:PORT) or a session to resume")
        session_id = secrets.token_urlsafe(18)
        exchange.create_session(
            session_id, role="initiator", partner_url=partner_url.rstrip("/"), data={}
        )
        say(f"session {session_id} opened with {partner_url}")
    info = exchange.session(session_id)
    if info.role != "initiator":
        raise InputError(f"session {session_id} was opened by the partner; it drives it")
    result = OnboardResult(info)
    if info.state in FINAL_STATES:
        return result
    signer, chain = exchange.identity()
    data = dict(info.data)
    with PartnerClient(
        info.partner_url,
        home=home,
        signer=signer,
        chain=chain,
        pin=data.get("tls"),
        partner=info.partner_org,
    ) as client:

        def done(step: Step) -> bool:
            return step.value in exchange.session(session_id).steps

        def pending(step: Step, build: Callable[[], Any]) -> Any:
            """The request of ``step``: built once, stored before it is sent."""
            requests = data.setdefault("requests", {})
            if step.value not in requests:
                requests[step.value] = build()
                exchange.update_session(session_id, data=data)
            return requests[step.value]

        def finish(step: Step, answer: Envelope | None, body: Any, **session: Any) -> None:
            exchange.record_step(
                session_id,
                step,
                digest=request_digest(body),
                answer="" if answer is None else answer.token,
                data=answer.body if answer is not None and isinstance(answer.body, dict) else {},
                session={"data": data, **session},
            )
            result.done.append(step.value)

        def decided(
            step: Step,
            answer: Envelope,
            body: Any,
            decision: Any,
            state: str,
            rejection: str,
            line: str,
        ) -> bool:
            """Finish an assessment step; True where the decision rejected (session over)."""
            rejected = decision == "reject"
            finish(
                step,
                answer,
                body,
                state="rejected" if rejected else state,
                reason=rejection if rejected else None,
            )
            say(line)
            return bool(rejected)

        def stop_after(step: Step) -> bool:
            return until is not None and step.position >= until.position

        # discover: always (re-)verify the node; the first run stores the pin and the partner.
        discovery = client.discover()
        if not done(Step.DISCOVER):
            data.update(
                partner=discovery.party.to_json(),
                tls=discovery.tls_sha256,
                formats=discovery.body.get("formats"),
                description=discovery.body,
            )
            finish(
                Step.DISCOVER,
                None,
                {"url": info.partner_url},
                state="discovered",
                partner_org=discovery.party.organization,
                partner_name=discovery.party.name,
            )
            say(
                f"discovered {discovery.party.name} ({discovery.party.organization}) by the "
                f"{discovery.party.route} route at {discovery.party.reference_level}; TLS "
                f"certificate pinned"
            )
            follow_partner_log(home, discovery.body)
        if stop_after(Step.DISCOVER):
            return _stopped(result, exchange, session_id, f"stopped after {Step.DISCOVER}")
        partner = Party(**data["partner"])

        if not done(Step.HELLO):
            body = pending(
                Step.HELLO,
                lambda: {
                    "session": session_id,
                    "offer": settings.supported(),
                    "node": _own_url(home),
                },
            )
            answer = client.call("POST", SESSIONS, body)
            reply = answer.body
            selected = check_selection(
                body["offer"],
                data.get("formats") or {},
                reply.get("selected"),
                reply.get("offer_digest"),
            )
            data.update(selected=selected, their_challenge=reply.get("challenge"))
            finish(Step.HELLO, answer, body, state="opened")
            say(f"session opened; formats {', '.join(f'{k} {v}' for k, v in selected.items())}")
        if stop_after(Step.HELLO):
            return _stopped(result, exchange, session_id, f"stopped after {Step.HELLO}")

        base = f"{SESSIONS}/{session_id}"
        if not done(Step.PRESENTATION):
            body = pending(
                Step.PRESENTATION,
                lambda: {
                    "challenge": Challenge.issue(exchange.organization(), home.now()).to_json()
                },
            )
            answer = client.call("POST", f"{base}/presentation", body)
            package = (answer.body or {}).get("package")
            if not isinstance(package, str):
                raise ExchangeError(
                    "the partner answered the presentation request without a package"
                )
            document = exchange.assess(
                package,
                challenge=Challenge.from_json(body["challenge"]),
                partner=partner,
                source=f"package of {partner.name}",
                policy=policy,
            )
            data.update(assessment=document, package=package)
            if decided(
                Step.PRESENTATION,
                answer,
                body,
                document["decision"],
                "assessed",
                f"our assessment rejected {partner.name}: {decision_reason(document)}",
                f"assessed {partner.name} under {document['policy']['id']}: "
                f"{document['decision']}, score {document['score']}, confidence "
                f"{document['confidence']}",
            ):
                return OnboardResult(exchange.session(session_id), result.done)
        if stop_after(Step.PRESENTATION):
            return _stopped(result, exchange, session_id, f"stopped after {Step.PRESENTATION}")

        if not done(Step.PROFILE):
            challenge = Challenge.from_json(data.get("their_challenge"))
            if challenge.audience != partner.organization:
                raise ExchangeError(
                    f"{partner.name} asks for a presentation addressed to "
                    f"{challenge.audience!r}, not to itself ({partner.organization})"
                )
            if "profile" not in data.get("requests", {}):
                challenge.check_open(home.now())
            body = pending(
                Step.PROFILE,
                lambda: {
                    "package": home.credentials.package(
                        audience=challenge.audience, nonce=challenge.nonce
                    )
                },
            )
            answer = client.call("POST", f"{base}/profile", body)
            theirs = answer.body or {}
            data["their_assessment"] = theirs
            if decided(
                Step.PROFILE,
                answer,
                body,
                theirs.get("decision"),
                "presented",
                f"{partner.name} rejected us: {decision_reason(theirs)}",
                f"{partner.name} assessed us under {theirs.get('policy')}: "
                f"{theirs.get('decision')}, score {theirs.get('score')}",
            ):
                return OnboardResult(exchange.session(session_id), result.done)
        if stop_after(Step.PROFILE):
            return _stopped(result, exchange, session_id, f"stopped after {Step.PROFILE}")

        if not done(Step.PROPOSE):
            if "propose" not in data.get("requests", {}) and (terms is None or signatory is None):
                return _stopped(
                    result,
                    exchange,
                    session_id,
                    "both sides assessed; to propose a contract, give --terms and our "
                    "signatory's --signatory-key and --signatory-chain",
                )
            if settings.tsa is None and "propose" not in data.get("requests", {}):
                raise InputError(
                    "this home names no TSA for contract signatures",
                    hint="trustbridge exchange setup ... --tsa URL",
                )

            def proposal() -> dict[str, Any]:
                assert terms is not None and signatory is not None and settings.tsa is not None
                pdf = sign_contract(
                    render_contract(terms),
                    signer=signatory[0],
                    chain=signatory[1],
                    timestamp=http_timestamper(settings.tsa),
                    at=home.now(),
                )
                return {"pdf": base64.b64encode(pdf).decode("ascii")}

            body = pending(Step.PROPOSE, proposal)
            answer = client.call("POST", f"{base}/contract", body)
            reply = answer.body or {}
            proposed = decode_pdf(body["pdf"], "our proposal")
            ours_id = contract_terms(proposed).id
            if reply.get("contract") != ours_id:
                raise ExchangeError(
                    f"{partner.name} acknowledged contract {reply.get('contract')!r}, not "
                    f"{ours_id!r}"
                )
            finish(
                Step.PROPOSE,
                answer,
                body,
                state="proposed",
                contract_id=ours_id,
                contract_pdf=proposed,
            )
            say(f"contract {reply.get('contract')} proposed, signed by our signatory")
        if stop_after(Step.PROPOSE):
            return _stopped(result, exchange, session_id, f"stopped after {Step.PROPOSE}")

        if not done(Step.COUNTERSIGN):
            body = {"session": session_id}
            answer = client.call("GET", f"{base}/contract")
            reply = answer.body or {}
            if reply.get("state") not in ("countersigned", "concluded"):
                return _stopped(
                    result,
                    exchange,
                    session_id,
                    f"waiting for {partner.name}'s signatory to sign the contract "
                    f"(partner state {reply.get('state')})",
                )
            pdf = decode_pdf(reply.get("pdf"), "the countersigned contract")
            ours = exchange.contract(session_id)
            if not pdf.startswith(ours):
                raise ExchangeError(
                    "the countersigned contract is not an incremental update of our proposal"
                )
            report = exchange.verify_contract(pdf)
            if not report.complete or not all(s.ok for s in report.signatures):
                raise ExchangeError("the countersigned contract does not verify")
            finish(Step.COUNTERSIGN, answer, body, state="countersigned", contract_pdf=pdf)
            say(f"contract countersigned by {partner.name}'s signatory")
        if stop_after(Step.COUNTERSIGN):
            return _stopped(result, exchange, session_id, f"stopped after {Step.COUNTERSIGN}")

        if not done(Step.CONCLUDE):

            def final() -> dict[str, Any]:
                assert settings.tsa is not None
                pdf = exchange.contract(session_id)
                chains = signer_chains(pdf)
                _, others, _ = exchange.contract_trust(pdf)
                certificates = [c for chain in chains for c in chain] + others
                certificates += [c for c in pdf_certificates(pdf) if c not in certificates]
                archived = archive_contract(
                    pdf,
                    timestamp=http_timestamper(settings.tsa),
                    certificates=certificates,
                    crls=fetch_crls(certificates, home.fetcher()),
                )
                return {"pdf": base64.b64encode(archived).decode("ascii")}

            body = pending(Step.CONCLUDE, final)
            archived = decode_pdf(body["pdf"], "the archived contract")
            report = exchange.verify_contract(archived)
            if not (report.complete and report.archived):
                raise ExchangeError("the archived contract is not complete and archived")
            answer = client.call("POST", f"{base}/conclude", body)
            finish(Step.CONCLUDE, answer, body, state="concluded", contract_pdf=archived)
            say("contract concluded: both signatures, timestamps, validation data, archived")
    return OnboardResult(exchange.session(session_id), result.done)


def _stopped(result: OnboardResult, exchange: Any, session_id: str, why: str) -> OnboardResult:
    result.session = exchange.session(session_id)
    result.waiting = why
    return result


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    id: str
    accepted: bool
    reason: str
    receipt: str
    policies: tuple[str, ...]


def send_message(
    home: Home,
    *,
    contract: str,
    partner: str,
    content: bytes,
    media_type: str,
    name: str,
    element: str,
    purpose: str,
    sender: Signer,
    sender_chain: Sequence[x509.Certificate],
    component: str | None = None,
) -> SentMessage:
    """Seal a message to the partner of a concluded contract, send it, keep the receipt."""
    exchange = home.exchange
    session, _terms = exchange.concluded(contract, partner)
    url = session.partner_url
    with PartnerClient(
        url, home=home, signer=sender, chain=sender_chain, partner=partner
    ) as client:
        discovery = client.discover()
        if not discovery.agreement:
            raise ExchangeError(f"{partner} publishes no key-agreement certificate")
        recipient, _ = exchange.resolve_party(
            discovery.agreement, what=f"the key-agreement certificate of {partner}"
        )
        if recipient.organization != partner:
            raise ExchangeError(
                f"the key-agreement certificate belongs to {recipient.organization}"
            )
        at = home.now()
        message_id = secrets.token_urlsafe(16)
        token = seal_message(
            content,
            media_type=media_type,
            name=name,
            element=element,
            purpose=purpose,
            contract=contract,
            sender=sender,
            sender_chain=sender_chain,
            recipient=discovery.agreement[0],
            audience=partner,
            at=at,
            component=component,
            message_id=message_id,
        )
        refused: TrustbridgeError | None = None
        receipt_token: str | None = None
        try:
            answer = client.call("POST", MESSAGES, raw=token.encode("ascii"), content_type=JOSE)
            receipt_token = (answer.body or {}).get("receipt")
        except AccessDeniedError as exc:
            refused = exc
            receipt_token = _refusal_receipt(exc)
    if not isinstance(receipt_token, str):
        raise refused or ExchangeError("the partner answered without a receipt")
    receipt = verify_receipt(receipt_token, at=home.now(), source=f"receipt from {partner}")
    signer_party, _ = exchange.resolve_party(receipt.signer_chain, what="the receipt's signer")
    if signer_party.organization != partner:
        raise ExchangeError(f"the receipt is signed by {signer_party.organization}, not {partner}")
    digest = (
        base64.urlsafe_b64encode(hashlib.sha256(token.encode("ascii")).digest())
        .rstrip(b"=")
        .decode()
    )
    if receipt.digest != digest or receipt.message_id != message_id:
        raise ExchangeError("the receipt names another message (digest mismatch)")
    exchange.record_message(
        message_id=receipt.message_id,
        direction="out",
        receiver_org=partner,
        accepted=receipt.accepted,
        reason=receipt.reason,
        token=token,
        token_digest=digest,
        policies=receipt.policies,
        session_id=session.id,
        receipt=receipt_token,
        sender_org=exchange.organization(),
        sender=sender_chain[0].subject.rfc4514_string(),
        meta={"contract": contract, "element": element, "purpose": purpose, "name": name},
    )
    return SentMessage(
        receipt.message_id, receipt.accepted, receipt.reason, receipt_token, tuple(receipt.policies)
    )


def _refusal_receipt(exc: TrustbridgeError) -> str | None:
    return exc.receipt if isinstance(exc, RefusedError) else None


def follow_partner_log(home: Home, description: dict[str, Any]) -> None:
    """Follow the partner's transparency log with the key its signed description names, so
    that its checkpoints (and the provenance statements it logs) can be checked here."""
    log = description.get("log")
    if not isinstance(log, dict) or not isinstance(log.get("vkey"), str):
        return
    url = log.get("url")
    organization = description.get("organization")
    home.log.follow(
        LogKey.from_vkey(log["vkey"], source="the partner's description"),
        url=url if isinstance(url, str) else None,
        organization=(
            {
                "name": str(organization.get("name")),
                "identifier": str(organization.get("identifier")),
            }
            if isinstance(organization, dict)
            else None
        ),
    )
