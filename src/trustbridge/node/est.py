"""EST (RFC 7030) for machines and software, on the node's HTTPS listener.

- ``GET /.well-known/est[/<ca>]/cacerts``: the EST CA's certificate and chain, base64 certs-only
  CMS (``application/pkcs7-mime``).
- ``POST /.well-known/est[/<ca>]/simpleenroll``: a base64 PKCS#10 request in, the issued
  certificate out (base64 certs-only CMS). The caller authenticates either with HTTP Basic, the
  password being a one-time enrolment token of the organization (``trustbridge enrol token``),
  or with an enrolment credential of the organization as TLS client certificate (a
  manufacturer-installed certificate, say); the request goes through the release process with
  the token or the enrolment-credential rule.
- ``POST /.well-known/est[/<ca>]/simplereenroll``: the caller presents its current identity as
  TLS client certificate; the node re-validates it (path, status: a revoked identity cannot
  re-enrol) and renews it (same key) or rekeys it (new key in the CSR) under the
  current-identity rule. The CSR's subject must be the current certificate's (RFC 7030 4.2.2).

Without a label the EST CA is the home's first active CA that issues machines; ``<ca>`` picks
another by its short name. The CSR's subject names the identity the way trustbridge
certificates do: machines ``C, O (manufacturer), serialNumber, CN "<model> <serial>"``,
software ``C, O, organizationIdentifier, CN "<name> <version>"``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, HTTPException, Request, Response

from trustbridge import oids
from trustbridge.errors import ApprovalError, NotFoundError, TrustbridgeError, ValidationError
from trustbridge.home import Home
from trustbridge.home.records import Issued
from trustbridge.pki.ca import key_fingerprint
from trustbridge.pki.profiles import MachineSubject, SoftwareSubject, Subject

__all__ = ["est_router", "subject_from_csr"]

PKCS7_MIME = "application/pkcs7-mime; smime-type=certs-only"
MAX_CSR = 16 * 1024


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode()


def subject_from_csr(csr: x509.CertificateSigningRequest) -> Subject:
    """The machine or software subject a CSR's distinguished name describes."""
    name = csr.subject
    country = _attribute(name, NameOID.COUNTRY_NAME)
    organization = _attribute(name, NameOID.ORGANIZATION_NAME)
    common_name = _attribute(name, NameOID.COMMON_NAME)
    serial = _attribute(name, NameOID.SERIAL_NUMBER)
    org_id = _attribute(name, oids.ID_AT_ORGANIZATION_IDENTIFIER)
    missing = [
        label
        for label, value in (("C", country), ("O", organization), ("CN", common_name))
        if not value
    ]
    if missing or not (serial or org_id):
        missing += [] if (serial or org_id) else ["serialNumber or organizationIdentifier"]
        raise HTTPException(
            400,
            f"the CSR subject {name.rfc4514_string()!r} lacks {', '.join(missing)}: machines "
            "need C, O, serialNumber, CN '<model> <serial>'; software C, O, "
            "organizationIdentifier, CN '<name> <version>'",
        )
    assert country and organization and common_name
    try:
        if serial:
            model = common_name.removesuffix(f" {serial}").strip() or common_name
            return MachineSubject(
                manufacturer=organization, model=model, serial_number=serial, country=country
            )
        assert org_id
        software, _, version = common_name.rpartition(" ")
        return SoftwareSubject(
            name=software or common_name,
            version=version,
            organization=organization,
            organization_identifier=org_id,
            country=country,
        )
    except TrustbridgeError as exc:
        raise HTTPException(
            400, f"the CSR subject does not fit the profile: {exc.message}"
        ) from None


def _certs_only(certificates: list[x509.Certificate]) -> Response:
    body = base64.encodebytes(pkcs7.serialize_certificates(certificates, Encoding.DER))
    return Response(body, media_type=PKCS7_MIME, headers={"Content-Transfer-Encoding": "base64"})


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise HTTPException(
            401,
            "EST enrolment needs HTTP Basic authentication with an enrolment token as password",
            headers={"WWW-Authenticate": 'Basic realm="trustbridge EST"'},
        )
    try:
        _user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPException(401, "the Basic authorization header is not base64") from None
    if not password:
        raise HTTPException(401, "the Basic authorization carries no enrolment token")
    return password


def est_router(home: Home) -> APIRouter:
    router = APIRouter(tags=["EST (RFC 7030)"])

    def est_ca(label: str | None) -> str:
        active = [c for c in home.cas() if c.state == "active"]
        if label is not None:
            if label not in {c.slug for c in active}:
                raise HTTPException(404, f"no EST CA {label!r} on this node")
            return label
        for info in active:
            if "machine" in info.kinds:
                return info.slug
        raise HTTPException(404, "this node has no CA that issues machine identities")

    async def cacerts(label: str | None, _request: Request) -> Response:
        return _certs_only(list(home.chain_of(est_ca(label))))

    async def simpleenroll(label: str | None, request: Request) -> Response:
        ca = est_ca(label)
        peer = _peer(request)
        # A manufacturer-installed credential as TLS client certificate, or a one-time token.
        token = (
            None if peer is not None and "authorization" not in request.headers else _token(request)
        )
        csr, der = await _read_csr(request)
        subject = subject_from_csr(csr)
        level = _machine_level(home, ca)
        try:
            result = await asyncio.to_thread(
                home.submit_request,
                ca=ca,
                subject=subject,
                level=level,
                csr_data=der,
                csr_source="EST request",
                enrolment_token=token,
                enrolment_channel=peer if token is None else None,
            )
        except NotFoundError as exc:
            raise HTTPException(404, exc.message) from None
        except TrustbridgeError as exc:
            raise HTTPException(401 if _is_auth(exc) else 400, exc.message) from None
        if not isinstance(result, Issued):  # the token rule releases at once
            return Response(status_code=202, headers={"Retry-After": "60"})
        return _certs_only([result.certificates[0]])

    async def simplereenroll(label: str | None, request: Request) -> Response:
        current = _peer(request)
        if current is None:
            raise HTTPException(
                401,
                "EST re-enrolment needs the current identity as TLS client certificate",
            )
        csr, der = await _read_csr(request)
        if csr.subject != current.subject:
            raise HTTPException(
                400,
                f"the CSR subject {csr.subject.rfc4514_string()!r} differs from the current "
                f"identity's {current.subject.rfc4514_string()!r} (RFC 7030 4.2.2)",
            )
        try:
            info = home.certificate_by_fingerprint(_fingerprint(current))
        except NotFoundError:
            raise HTTPException(
                401, "the client certificate is not an identity of this node"
            ) from None
        if info.status != "good":
            raise HTTPException(401, f"the client certificate {info.serial} is {info.status}")
        if label is not None and label != info.ca:
            raise HTTPException(400, f"the current identity is not of CA {label}")
        try:
            # In a worker thread: path validation runs an event loop of its own.
            if key_fingerprint(csr.public_key()) == info.key_fingerprint:
                result = await asyncio.to_thread(
                    home.renew, info.serial, ca=info.ca, current_identity=current
                )
            else:
                result = await asyncio.to_thread(
                    home.rekey,
                    info.serial,
                    ca=info.ca,
                    csr_data=der,
                    csr_source="EST re-enrolment request",
                    current_identity=current,
                )
        except NotFoundError:
            raise HTTPException(
                401, "the client certificate is not an identity of this node"
            ) from None
        except TrustbridgeError as exc:
            raise HTTPException(401 if _is_auth(exc) else 400, exc.message) from None
        if not isinstance(result, Issued):
            return Response(status_code=202, headers={"Retry-After": "60"})
        return _certs_only([result.certificates[0]])

    for operation, method, handler, summary in (
        ("cacerts", "GET", cacerts, "EST CA certificates (RFC 7030 4.1)"),
        ("simpleenroll", "POST", simpleenroll, "EST enrolment (RFC 7030 4.2)"),
        ("simplereenroll", "POST", simplereenroll, "EST re-enrolment (RFC 7030 4.2.2)"),
    ):
        _add_routes(router, operation, method, handler, summary)
    return router


def _peer(request: Request) -> x509.Certificate | None:
    """The TLS client certificate the node's protocol put into the scope, if any."""
    der = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
    return x509.load_der_x509_certificate(der) if der else None


Handler = Callable[[str | None, Request], Awaitable[Response]]


def _add_routes(
    router: APIRouter, operation: str, method: str, handler: Handler, summary: str
) -> None:
    """``/.well-known/est/OP`` (the default EST CA) and ``/.well-known/est/<ca>/OP``."""

    async def default(request: Request) -> Response:
        return await handler(None, request)

    async def labelled(label: str, request: Request) -> Response:
        return await handler(label, request)

    router.add_api_route(
        f"/.well-known/est/{operation}", default, methods=[method], summary=summary
    )
    router.add_api_route(
        f"/.well-known/est/{{label}}/{operation}",
        labelled,
        methods=[method],
        summary=f"{summary}, at one CA",
    )


async def _read_csr(request: Request) -> tuple[x509.CertificateSigningRequest, bytes]:
    body = await request.body()
    if len(body) > MAX_CSR:
        raise HTTPException(413, f"CSR of {len(body)} bytes exceeds {MAX_CSR}")
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
        return x509.load_der_x509_csr(der), der
    except (binascii.Error, ValueError):
        raise HTTPException(400, "the body is not a base64 DER PKCS#10 request") from None


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _is_auth(exc: TrustbridgeError) -> bool:
    """Refusals about who the caller is (401) rather than what it asks (400)."""
    return isinstance(exc, ApprovalError | ValidationError)


def _machine_level(home: Home, ca: str) -> str:
    """The lowest level the EST CA issues at (devices enrol at their CA's entry level)."""
    info = home.ca(ca)
    return info.levels[0]
