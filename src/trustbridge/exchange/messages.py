"""Secure messages between organizations, and the signed receipts that answer them.

A message is a JWT (``typ`` ``tb-message+jwt``) signed by the sending software or machine
identity, with its certificate chain in ``x5c``, then encrypted to the receiving organization's
P-256 key-agreement certificate as a compact JWE (``alg`` ``ECDH-ES``, ``enc`` ``A256GCM``,
``cty`` ``JWT``, ``typ`` ``tb-message+jwe``, ``kid`` the certificate's SHA-256 fingerprint).
A receipt is a JWT of its own type (``tb-receipt+jwt``) signed by the receiver.

:func:`open_message` and :func:`verify_receipt` check everything that needs no outside
knowledge. Whether the sender's chain is trusted (the trust resolver) and whether the contract
and the access policy allow the message are the caller's decisions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials._jose import (
    decode_jwt,
    key_from_jwk,
    sign_jws,
    verify_jws,
    x5c_encode,
    x5c_of,
)
from trustbridge.credentials.errors import CredentialError, TamperedCredentialError
from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.pki.signers import Signer
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    b64url_decode,
    b64url_encode,
    parse_json,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_MAX_SIZE",
    "ENVELOPE_TYPE",
    "MAX_LIFETIME",
    "MESSAGE_TYPE",
    "RECEIPT_TYPE",
    "ExpiredMessageError",
    "MalformedMessageError",
    "MessageError",
    "MessageTooLargeError",
    "MessageTypeError",
    "NotYetValidMessageError",
    "OpenedMessage",
    "Receipt",
    "ReceiptMismatchError",
    "TamperedMessageError",
    "WrongRecipientError",
    "WrongSenderError",
    "make_receipt",
    "open_message",
    "seal_message",
    "sender_subject",
    "verify_receipt",
]

#: ``typ`` of the signed message inside the envelope.
MESSAGE_TYPE = "tb-message+jwt"
#: ``typ`` of the encrypted envelope.
ENVELOPE_TYPE = "tb-message+jwe"
#: ``typ`` of a receipt.
RECEIPT_TYPE = "tb-receipt+jwt"
DEFAULT_LIFETIME = timedelta(minutes=10)
MAX_LIFETIME = timedelta(days=1)
DEFAULT_MAX_SIZE = 4 * 1024 * 1024
DEFAULT_SKEW = timedelta(seconds=30)
RECEIPT_MAX_SIZE = 64 * 1024

_ALG = "ECDH-ES"
_ENC = "A256GCM"
_ENVELOPE_MEMBERS = frozenset({"alg", "enc", "epk", "cty", "typ", "kid"})
_SIGNED_MEMBERS = frozenset({"alg", "typ", "x5c"})
_MAX_ENVELOPE_HEADER = 1024
_MESSAGE_CLAIMS = {
    "iss": str,
    "sub": str,
    "aud": str,
    "jti": str,
    "iat": int,
    "exp": int,
    "contract": str,
    "element": str,
    "purpose": str,
    "name": str,
    "media_type": str,
    "content": str,
    "digest": str,
}
_OPTIONAL_MESSAGE_CLAIMS = {"component": str}
_RECEIPT_CLAIMS = {
    "iss": str,
    "jti": str,
    "digest": str,
    "accepted": bool,
    "reason": str,
    "policies": list,
    "iat": int,
}
_OPTIONAL_RECEIPT_CLAIMS = {"aud": str}

# Data categories and purposes are the lowercase slugs access policies name.
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DIGEST = re.compile(r"^[A-Za-z0-9_-]{43}$")
# RFC 6838 4.2 restricted names, with optional parameters (RFC 9110 8.3.1).
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(
    rf"^{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(\s*;\s*{_RESTRICTED_NAME}=[^;\s\"]{{1,128}})*$"
)


class _Registry(jwe.JWERegistry):
    """ECDH-ES + A256GCM only, with room for messages up to the size the caller allows
    (:func:`open_message` checks ``max_size`` before anything is parsed)."""

    max_ciphertext_length = 1 << 40
    max_aad_length = 1 << 40


_REGISTRY = _Registry(algorithms=[_ALG, _ENC])


# -- errors -----------------------------------------------------------------------------------


class MessageError(ValidationError):
    """A message or receipt that must not be accepted.

    Carries what was learnt before the refusal, so that the receiver can answer with a receipt:
    ``token_digest`` once the size was checked, ``message_id``, ``sender_chain`` and
    ``organization`` once the signature verified (the sender is then identified, though not
    yet trusted).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        hint: str | None = None,
        token_digest: str | None = None,
        message_id: str | None = None,
        sender_chain: Sequence[x509.Certificate] = (),
        organization: str | None = None,
    ) -> None:
        super().__init__(f"{source}: {message}" if source else message, hint=hint)
        #: Where the token came from (a peer, a file); may be empty.
        self.source = source
        self.token_digest = token_digest
        self.message_id = message_id
        self.sender_chain = tuple(sender_chain)
        self.organization = organization

    @property
    def sender_identified(self) -> bool:
        """Whether the signature verified, so a refusal receipt can name the sender."""
        return bool(self.sender_chain)


class MalformedMessageError(MessageError):
    """Not a compact JWE / JWS, a header or claim missing, of the wrong type or not allowed."""


class MessageTooLargeError(MalformedMessageError):
    """Larger than the receiver accepts; refused before it is parsed."""


class MessageTypeError(MalformedMessageError):
    """A ``typ`` other than expected: a receipt presented as a message, or the reverse."""


class TamperedMessageError(MessageError):
    """Decryption fails, the signature does not verify, an algorithm other than the key's, or
    content that does not match its digest."""


class WrongRecipientError(MessageError):
    """Encrypted to another certificate (``kid``) or addressed to another organization (``aud``)."""


class WrongSenderError(MessageError):
    """``iss`` or ``sub`` do not name the identity whose certificate signed."""


class ExpiredMessageError(MessageError):
    """Past ``exp`` (beyond the clock skew)."""


class NotYetValidMessageError(MessageError):
    """Issued in the future (``iat`` beyond the clock skew)."""


class ReceiptMismatchError(MessageError):
    """A receipt for another message than the one expected."""


class _Known(TypedDict, total=False):
    """What a refusal can tell about the message (the keyword arguments of MessageError)."""

    source: str
    token_digest: str | None
    message_id: str | None
    sender_chain: Sequence[x509.Certificate]
    organization: str | None


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedMessage:
    """A message whose envelope decrypted and whose signature verified against its ``x5c``
    leaf; the sender is identified, not yet trusted."""

    id: str
    sender_chain: tuple[x509.Certificate, ...]
    #: The sender's organization identifier (``iss``).
    organization: str
    #: The sender identity (``sub``): its URI, or its subject DN where it has none.
    subject: str
    audience: str
    contract: str
    element: str
    purpose: str
    name: str
    media_type: str
    content: bytes = field(repr=False)
    content_digest: str
    component: str | None
    issued_at: datetime
    expires_at: datetime
    #: The inner signed token, kept as evidence.
    jws: str = field(repr=False)
    #: SHA-256 of the JWE as received, base64url.
    token_digest: str

    def __post_init__(self) -> None:
        if not self.sender_chain:
            raise InputError("an opened message needs the sender's certificate chain")

    @property
    def sender(self) -> x509.Certificate:
        """The certificate that signed the message."""
        return self.sender_chain[0]

    def to_json(self) -> dict[str, Any]:
        """The metadata (without the content), for storage, listings and the audit trail."""
        return {
            "id": self.id,
            "organization": self.organization,
            "subject": self.subject,
            "sender_fingerprint": certificate_fingerprint(self.sender),
            "audience": self.audience,
            "contract": self.contract,
            "element": self.element,
            "purpose": self.purpose,
            "name": self.name,
            "media_type": self.media_type,
            "size": len(self.content),
            "content_digest": self.content_digest,
            "component": self.component,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "token_digest": self.token_digest,
        }


@dataclass(frozen=True)
class Receipt:
    """A receipt whose signature verified against its ``x5c`` leaf."""

    message_id: str
    #: The SHA-256 (base64url) of the message token the receipt answers.
    digest: str
    accepted: bool
    reason: str
    #: The access policies that decided.
    policies: tuple[str, ...]
    issued_at: datetime
    signer_chain: tuple[x509.Certificate, ...]
    #: The receiving organization's identifier (``iss``).
    receiver: str
    #: The sending organization's identifier (``aud``), where the receiver identified it.
    sender: str | None = None
    jws: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.signer_chain:
            raise InputError("a receipt needs the signer's certificate chain")

    @property
    def signer(self) -> x509.Certificate:
        return self.signer_chain[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "digest": self.digest,
            "accepted": self.accepted,
            "reason": self.reason,
            "policies": list(self.policies),
            "issued_at": self.issued_at.isoformat(),
            "receiver": self.receiver,
            "sender": self.sender,
            "signer_fingerprint": certificate_fingerprint(self.signer),
        }


# -- helpers ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())


def _numeric_date(at: datetime) -> int:
    return int(ensure_utc(at).timestamp())


def _problem_with_text(value: object, *, limit: int) -> str | None:
    """Why ``value`` is not acceptable as a short text, or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if len(value) > limit:
        return f"is longer than {limit} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "contains control characters"
    return None


def _field_problems(fields: Mapping[str, object]) -> list[str]:
    """The problems of a message's descriptive fields (shared by sealing and opening)."""
    problems = []
    for name in ("contract", "name"):
        problem = _problem_with_text(fields[name], limit=256)
        if problem:
            problems.append(f"{name} {problem}")
    for name in ("iss", "aud"):
        problem = _problem_with_text(fields[name], limit=128)
        if problem:
            problems.append(f"{name} {problem}")
    for name in ("element", "purpose"):
        value = fields[name]
        if not isinstance(value, str) or not _SLUG.match(value):
            problems.append(f"{name} {value!r} is not a lowercase identifier such as test-report")
    media_type = fields["media_type"]
    if (
        not isinstance(media_type, str)
        or len(media_type) > 255
        or not _MEDIA_TYPE.match(media_type)
    ):
        problems.append(f"media_type {media_type!r} is not a media type such as application/json")
    message_id = fields["jti"]
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        problems.append(f"message id {message_id!r} must be 1 to 128 letters, digits or . _ : -")
    component = fields.get("component")
    if component is not None:
        problem = _problem_with_text(component, limit=128)
        if problem:
            problems.append(f"component {problem}")
    return problems


def sender_subject(certificate: x509.Certificate) -> str:
    """The ``sub`` of messages a certificate signs: its first URI SAN, else its subject DN."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return certificate.subject.rfc4514_string()
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else certificate.subject.rfc4514_string()


def _describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or certificate_fingerprint(certificate)[:16]


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_signer_chain(
    signer: Signer, chain: Sequence[x509.Certificate], *, at: datetime, what: str
) -> tuple[tuple[x509.Certificate, ...], str]:
    """The chain as a tuple and the leaf's organization identifier; refuses mismatches."""
    certificates = tuple(chain)
    if not certificates:
        raise InputError(f"signing a {what} needs the signer's certificate chain, leaf first")
    leaf = certificates[0]
    if leaf.public_key() != signer.public_key:
        raise InputError(
            f"the first certificate of the chain ({_describe(leaf)}) does not certify the key "
            f"of {signer.description}",
            hint="pass the chain of the identity whose key signs, leaf first",
        )
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise InputError(
            f"the {what} signer's certificate ({_describe(leaf)}) is not valid at {at.isoformat()}"
        )
    usage = _key_usage(leaf)
    if usage is None or not usage.digital_signature:
        raise InputError(
            f"the {what} signer's certificate ({_describe(leaf)}) does not allow digital "
            f"signatures",
            hint="sign with a software, machine or organization identity, not a key-agreement "
            "certificate",
        )
    organization = organization_identifier_of(leaf)
    if organization is None:
        raise InputError(
            f"the {what} signer's certificate ({_describe(leaf)}) names no "
            f"organizationIdentifier, so the {what} cannot say which organization sends it",
            hint="sign with an identity issued for an organization (a software identity, say)",
        )
    return certificates, organization


def _check_recipient(recipient: x509.Certificate, *, audience: str, at: datetime) -> ECKey:
    key = recipient.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError(
            f"the recipient certificate ({_describe(recipient)}) holds a "
            f"{getattr(getattr(key, 'curve', None), 'name', type(key).__name__)} key; messages "
            "are encrypted to P-256 key-agreement certificates only",
        )
    usage = _key_usage(recipient)
    if usage is None or not usage.key_agreement:
        raise InputError(
            f"the recipient certificate ({_describe(recipient)}) is not a key-agreement "
            "certificate (keyUsage keyAgreement)",
            hint="encrypt to the organization's key-agreement certificate, not its identity",
        )
    if not recipient.not_valid_before_utc <= at <= recipient.not_valid_after_utc:
        raise InputError(
            f"the recipient certificate ({_describe(recipient)}) is not valid at {at.isoformat()}"
        )
    organization = organization_identifier_of(recipient)
    if organization is not None and organization != audience:
        raise InputError(
            f"the recipient certificate belongs to {organization}, but the message is "
            f"addressed to {audience}"
        )
    return ECKey.import_key(key)


# -- messages ---------------------------------------------------------------------------------


def seal_message(
    content: bytes,
    *,
    media_type: str,
    name: str,
    element: str,
    purpose: str,
    contract: str,
    sender: Signer,
    sender_chain: Sequence[x509.Certificate],
    recipient: x509.Certificate,
    audience: str,
    at: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    message_id: str | None = None,
    component: str | None = None,
) -> str:
    """Sign ``content`` as the sender's identity and encrypt it to ``recipient``: a compact JWE.

    ``recipient`` must be a P-256 key-agreement certificate valid at ``at``; ``audience`` is
    the receiving organization's identifier. Raises :class:`InputError` naming the problem.
    """
    if not isinstance(content, bytes):
        raise InputError("message content must be bytes")
    at = ensure_utc(at)
    chain, organization = _check_signer_chain(sender, sender_chain, at=at, what="message")
    recipient_key = _check_recipient(recipient, audience=audience, at=at)
    if not timedelta(seconds=1) <= lifetime <= MAX_LIFETIME:
        raise InputError(
            f"message lifetime {lifetime} is outside 1 second to {MAX_LIFETIME}",
            hint="messages are short-lived; the default is 10 minutes",
        )
    issued = _numeric_date(at)
    claims: dict[str, Any] = {
        "iss": organization,
        "sub": sender_subject(chain[0]),
        "aud": audience,
        "jti": message_id if message_id is not None else secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "contract": contract,
        "element": element,
        "purpose": purpose,
        "name": name,
        "media_type": media_type,
        "content": b64url_encode(content),
        "digest": _sha256(content),
    }
    if component is not None:
        claims["component"] = component
    problems = _field_problems(claims)
    if problems:
        raise InputError(f"cannot seal the message: {'; '.join(problems)}")
    signed = sign_jws(
        {"typ": MESSAGE_TYPE, "x5c": x5c_encode(chain)}, canonical_json(claims), sender
    )
    header = {
        "alg": _ALG,
        "enc": _ENC,
        "cty": "JWT",
        "typ": ENVELOPE_TYPE,
        "kid": certificate_fingerprint(recipient),
    }
    return jwe.encrypt_compact(header, signed.encode("ascii"), recipient_key, registry=_REGISTRY)


def _envelope_header(segment: str, *, source: str, digest: str) -> dict[str, Any]:
    """The JWE protected header, parsed strictly and checked member by member."""
    if len(segment) > _MAX_ENVELOPE_HEADER:
        raise MalformedMessageError(
            f"the JWE header is longer than {_MAX_ENVELOPE_HEADER} characters",
            source=source,
            token_digest=digest,
        )
    try:
        header = parse_json(b64url_decode(segment))
    except JwsFormatError as exc:
        raise MalformedMessageError(
            f"the JWE header is {exc}", source=source, token_digest=digest
        ) from None
    if not isinstance(header, dict):
        raise MalformedMessageError(
            "the JWE header is not a JSON object", source=source, token_digest=digest
        )
    unknown = sorted(set(header) - _ENVELOPE_MEMBERS)
    if unknown:
        # zip, crit, jku, apu/apv, x5u...: nothing we send, so nothing we accept
        raise MalformedMessageError(
            f"the JWE header carries members that are not allowed: {', '.join(unknown)}",
            source=source,
            token_digest=digest,
        )
    expected = {"alg": _ALG, "enc": _ENC, "typ": ENVELOPE_TYPE, "cty": "JWT"}
    for member, value in expected.items():
        if header.get(member) != value:
            error = MessageTypeError if member == "typ" else MalformedMessageError
            raise error(
                f"JWE {member} {header.get(member)!r} is refused; only {value!r} is accepted",
                source=source,
                token_digest=digest,
            )
    epk = header.get("epk")
    try:
        ephemeral = key_from_jwk(epk) if isinstance(epk, dict) else None
    except CredentialError as exc:
        raise MalformedMessageError(
            f"the JWE ephemeral key (epk) is refused: {exc.message}",
            source=source,
            token_digest=digest,
        ) from None
    if not isinstance(ephemeral, ec.EllipticCurvePublicKey) or not isinstance(
        ephemeral.curve, ec.SECP256R1
    ):
        raise MalformedMessageError(
            "the JWE ephemeral key (epk) is missing or not a P-256 public key",
            source=source,
            token_digest=digest,
        )
    return header


def _claim_problems(
    claims: Mapping[str, Any], required: Mapping[str, type], optional: Mapping[str, type]
) -> list[str]:
    problems = []
    for name in required:
        if name not in claims:
            problems.append(f"claim {name} is missing")
    for name, value in claims.items():
        kind = required.get(name) or optional.get(name)
        if kind is None:
            problems.append(f"claim {name} is not allowed")
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"claim {name} is not an integer")
        elif kind is not int and not isinstance(value, kind):
            problems.append(f"claim {name} is not a {kind.__name__}")
    return problems


def _decode_signed(
    text: str, *, typ: str, source: str, digest: str | None
) -> tuple[CompactJws, dict[str, Any], tuple[x509.Certificate, ...]]:
    """Parse a compact JWS of type ``typ`` and verify it with its ``x5c`` leaf."""
    try:
        jws, header, claims = decode_jwt(text, source="")
        if header.get("typ") != typ:
            raise MessageTypeError(
                f"token type {header.get('typ')!r} is not {typ!r}",
                source=source,
                token_digest=digest,
            )
        unknown = sorted(set(header) - _SIGNED_MEMBERS)
        if unknown:
            raise MalformedMessageError(
                f"the JWS header carries members that are not allowed: {', '.join(unknown)}",
                source=source,
                token_digest=digest,
            )
        chain = x5c_of(header)
        verify_jws(jws, chain[0].public_key())
    except TamperedCredentialError as exc:
        raise TamperedMessageError(exc.message, source=source, token_digest=digest) from None
    except CredentialError as exc:
        raise MalformedMessageError(exc.message, source=source, token_digest=digest) from None
    return jws, claims, chain


def open_message(
    token: str,
    *,
    recipient_key: ec.EllipticCurvePrivateKey,
    recipient_certificate: x509.Certificate,
    audience: str,
    at: datetime,
    max_skew: timedelta = DEFAULT_SKEW,
    max_size: int = DEFAULT_MAX_SIZE,
    source: str = "",
) -> OpenedMessage:
    """Decrypt and verify a message addressed to ``audience`` with the recipient's key.

    Checks the size before parsing, the exact envelope algorithms, that it is encrypted to
    ``recipient_certificate``, the inner type, the signature with the ``x5c`` leaf (by the
    algorithm of the leaf's key), audience, times, digest and that ``iss``/``sub`` name the
    signer. Raises a :class:`MessageError` subclass; it does not decide whether the sender is
    trusted or allowed to send this.
    """
    if not isinstance(token, str):
        raise MalformedMessageError("a message must be text (a compact JWE)", source=source)
    if len(token) > max_size:
        raise MessageTooLargeError(
            f"the message has {len(token)} characters; at most {max_size} are accepted",
            source=source,
        )
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedMessageError(
            "the message is not a compact JWE (non-ASCII characters)", source=source
        ) from None
    digest = _sha256(raw)
    at = ensure_utc(at)
    parts = token.split(".")
    if len(parts) != 5:
        raise MalformedMessageError(
            f"the message is not a compact JWE ({len(parts)} dot-separated parts instead of 5)",
            source=source,
            token_digest=digest,
        )
    header = _envelope_header(parts[0], source=source, digest=digest)
    if parts[1]:
        # RFC 7518 4.6: with direct key agreement the JWE Encrypted Key is empty
        raise MalformedMessageError(
            "the JWE carries an encrypted key, which ECDH-ES direct key agreement never does",
            source=source,
            token_digest=digest,
        )
    expected_kid = certificate_fingerprint(recipient_certificate)
    kid = header.get("kid")
    if kid != expected_kid:
        raise WrongRecipientError(
            f"the message is encrypted to certificate {str(kid)[:16]}..., not to "
            f"{expected_kid[:16]}... ({_describe(recipient_certificate)})",
            source=source,
            token_digest=digest,
        )
    if recipient_key.public_key() != recipient_certificate.public_key():
        raise InputError(
            f"the recipient key does not belong to {_describe(recipient_certificate)}",
            hint="open messages with the key of the key-agreement certificate they name",
        )
    try:
        envelope = jwe.decrypt_compact(raw, ECKey.import_key(recipient_key), registry=_REGISTRY)
    except (JoseError, ValueError) as exc:
        raise TamperedMessageError(
            f"the message does not decrypt ({exc}): its header, IV, ciphertext or tag was "
            "altered, or it was not encrypted to this key",
            source=source,
            token_digest=digest,
        ) from None
    plaintext = envelope.plaintext
    try:
        inner = plaintext.decode("ascii") if plaintext is not None else ""
    except UnicodeDecodeError:
        raise MalformedMessageError(
            "the decrypted content is not a compact JWS", source=source, token_digest=digest
        ) from None
    jws, claims, chain = _decode_signed(inner, typ=MESSAGE_TYPE, source=source, digest=digest)
    leaf = chain[0]
    jti = claims.get("jti")
    identified: _Known = {
        "source": source,
        "token_digest": digest,
        # only an id a receipt can repeat
        "message_id": jti if isinstance(jti, str) and _MESSAGE_ID.match(jti) else None,
        "sender_chain": chain,
        "organization": organization_identifier_of(leaf),
    }
    problems = _claim_problems(claims, _MESSAGE_CLAIMS, _OPTIONAL_MESSAGE_CLAIMS)
    if not problems:
        problems = _field_problems(claims)
    if problems:
        raise MalformedMessageError(f"the message is refused: {'; '.join(problems)}", **identified)
    usage = _key_usage(leaf)
    if usage is None or not usage.digital_signature:
        raise WrongSenderError(
            f"the signing certificate ({_describe(leaf)}) does not allow digital signatures",
            **identified,
        )
    organization = organization_identifier_of(leaf)
    if claims["iss"] != organization:
        raise WrongSenderError(
            f"iss {claims['iss']!r} is not the organizationIdentifier "
            f"{organization!r} of the signing certificate ({_describe(leaf)})",
            **identified,
        )
    if claims["sub"] != sender_subject(leaf):
        raise WrongSenderError(
            f"sub {claims['sub']!r} does not name the signing certificate ({_describe(leaf)})",
            **identified,
        )
    if claims["aud"] != audience:
        raise WrongRecipientError(
            f"the message is addressed to {claims['aud']!r}, not to {audience!r}", **identified
        )
    try:
        issued = datetime.fromtimestamp(claims["iat"], UTC)
        expires = datetime.fromtimestamp(claims["exp"], UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedMessageError("iat or exp is out of range", **identified) from None
    if not issued < expires <= issued + MAX_LIFETIME:
        raise MalformedMessageError(
            f"the message lifetime {expires - issued} is not between 1 second and {MAX_LIFETIME}",
            **identified,
        )
    if issued > at + max_skew:
        raise NotYetValidMessageError(
            f"the message was issued at {issued.isoformat()}, after {at.isoformat()}",
            **identified,
        )
    if at - max_skew >= expires:
        raise ExpiredMessageError(f"the message expired at {expires.isoformat()}", **identified)
    try:
        content = b64url_decode(claims["content"]) if claims["content"] else b""
    except JwsFormatError as exc:
        raise MalformedMessageError(f"claim content is {exc}", **identified) from None
    content_digest = _sha256(content)
    if not _DIGEST.match(claims["digest"]) or not hmac.compare_digest(
        content_digest, claims["digest"]
    ):
        raise TamperedMessageError("the content does not match its digest (SHA-256)", **identified)
    return OpenedMessage(
        id=claims["jti"],
        sender_chain=chain,
        organization=claims["iss"],
        subject=claims["sub"],
        audience=claims["aud"],
        contract=claims["contract"],
        element=claims["element"],
        purpose=claims["purpose"],
        name=claims["name"],
        media_type=claims["media_type"],
        content=content,
        content_digest=content_digest,
        component=claims.get("component"),
        issued_at=issued,
        expires_at=expires,
        jws=f"{jws.header}.{jws.payload}.{jws.signature}",
        token_digest=digest,
    )


# -- receipts ---------------------------------------------------------------------------------


def make_receipt(
    message: OpenedMessage | None,
    *,
    message_id: str,
    token_digest: str,
    accepted: bool,
    reason: str,
    policies: Sequence[str] = (),
    signer: Signer,
    chain: Sequence[x509.Certificate],
    at: datetime,
    receiver: str,
    sender_organization: str | None = None,
) -> str:
    """A signed receipt (``tb-receipt+jwt``) saying whether the message was accepted and why.

    ``message`` is the opened message where it opened; for a refused one pass ``None`` and
    what the error knew (:attr:`MessageError.message_id`, ``token_digest``,
    ``organization`` as ``sender_organization``). ``receiver`` must be the organization
    identifier of the signing certificate.
    """
    at = ensure_utc(at)
    certificates, organization = _check_signer_chain(signer, chain, at=at, what="receipt")
    if organization != receiver:
        raise InputError(
            f"the receipt signer's certificate belongs to {organization}, not to {receiver}"
        )
    if message is not None:
        if message.id != message_id or message.token_digest != token_digest:
            raise InputError(
                f"the receipt names message {message_id!r} with digest {token_digest!r}, but "
                f"the opened message is {message.id!r} with digest {message.token_digest!r}"
            )
        if sender_organization not in (None, message.organization):
            raise InputError(
                f"the message was sent by {message.organization}, not by {sender_organization}"
            )
        sender_organization = message.organization
    problems = []
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        problems.append(f"message id {message_id!r} is not a message id")
    if not isinstance(token_digest, str) or not _DIGEST.match(token_digest):
        problems.append(f"digest {token_digest!r} is not a base64url SHA-256")
    if not isinstance(accepted, bool):
        problems.append("accepted must be true or false")
    problem = _problem_with_text(reason, limit=1000)
    if problem:
        problems.append(f"reason {problem}")
    for policy in policies:
        problem = _problem_with_text(policy, limit=256)
        if problem:
            problems.append(f"policy id {policy!r} {problem}")
    if sender_organization is not None:
        problem = _problem_with_text(sender_organization, limit=128)
        if problem:
            problems.append(f"sender organization {problem}")
    if problems:
        raise InputError(f"cannot make the receipt: {'; '.join(problems)}")
    claims: dict[str, Any] = {
        "iss": receiver,
        "jti": message_id,
        "digest": token_digest,
        "accepted": accepted,
        "reason": reason,
        "policies": list(policies),
        "iat": _numeric_date(at),
    }
    if sender_organization is not None:
        claims["aud"] = sender_organization
    return sign_jws(
        {"typ": RECEIPT_TYPE, "x5c": x5c_encode(certificates)}, canonical_json(claims), signer
    )


def verify_receipt(
    token: str,
    *,
    at: datetime,
    expect_digest: str | None = None,
    max_skew: timedelta = DEFAULT_SKEW,
    max_size: int = RECEIPT_MAX_SIZE,
    source: str = "",
) -> Receipt:
    """Verify a receipt's type and signature against its ``x5c`` leaf; with ``expect_digest``,
    also that it answers that message. Whether the leaf is trusted is the caller's business."""
    if not isinstance(token, str):
        raise MalformedMessageError("a receipt must be text (a compact JWS)", source=source)
    if len(token) > max_size:
        raise MessageTooLargeError(
            f"the receipt has {len(token)} characters; at most {max_size} are accepted",
            source=source,
        )
    at = ensure_utc(at)
    jws, claims, chain = _decode_signed(token, typ=RECEIPT_TYPE, source=source, digest=None)
    leaf = chain[0]
    context: _Known = {"source": source, "sender_chain": chain}
    problems = _claim_problems(claims, _RECEIPT_CLAIMS, _OPTIONAL_RECEIPT_CLAIMS)
    if not problems:
        if not _MESSAGE_ID.match(claims["jti"]):
            problems.append("claim jti is not a message id")
        if not _DIGEST.match(claims["digest"]):
            problems.append("claim digest is not a base64url SHA-256")
        if not all(isinstance(p, str) for p in claims["policies"]):
            problems.append("claim policies is not a list of strings")
    if problems:
        raise MalformedMessageError(f"the receipt is refused: {'; '.join(problems)}", **context)
    organization = organization_identifier_of(leaf)
    if claims["iss"] != organization:
        raise WrongSenderError(
            f"iss {claims['iss']!r} is not the organizationIdentifier {organization!r} of the "
            f"signing certificate ({_describe(leaf)})",
            **context,
        )
    try:
        issued = datetime.fromtimestamp(claims["iat"], UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedMessageError("iat is out of range", **context) from None
    if issued > at + max_skew:
        raise NotYetValidMessageError(
            f"the receipt was issued at {issued.isoformat()}, after {at.isoformat()}", **context
        )
    if expect_digest is not None and not hmac.compare_digest(
        claims["digest"].encode(), expect_digest.encode()
    ):
        raise ReceiptMismatchError(
            f"the receipt answers message {claims['jti']!r} with digest {claims['digest']}, "
            f"not the message with digest {expect_digest}",
            **context,
        )
    return Receipt(
        message_id=claims["jti"],
        digest=claims["digest"],
        accepted=claims["accepted"],
        reason=claims["reason"],
        policies=tuple(claims["policies"]),
        issued_at=issued,
        signer_chain=chain,
        receiver=claims["iss"],
        sender=claims.get("aud"),
        jws=f"{jws.header}.{jws.payload}.{jws.signature}",
    )
