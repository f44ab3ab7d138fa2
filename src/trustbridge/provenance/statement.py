"""Lifecycle statements: in-toto Statements (v1) about a component, with our lifecycle predicate,
signed in a DSSE envelope and carried with the signer's certificate chain.

- The subject is the component: its stable URI (the machine certificate's URI SAN where it has
  one), the SHA-256 of its certificate (or of the URI) and its serial number, model and
  manufacturer as annotations.
- The predicate names the event, its details, the digest of the component's previous statement
  (``previous``) and the time the signer claims. The claimed time is informational only: a
  statement's time is its log-inclusion time or an RFC 3161 timestamp, which the verifier gets
  from the caller.
- A :class:`SignedStatement` is what travels and is logged: the envelope, the signer's chain and
  optionally an RFC 3161 token over the DSSE signature, in a JSON form like a sigstore bundle.

Specifications: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md and
https://github.com/secure-systems-lab/dsse.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials._jose import x5c_encode
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.signers import Signer
from trustbridge.provenance.dsse import Envelope, EnvelopeFormatError, sign_envelope
from trustbridge.trust._jws import JwsFormatError, parse_json

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Component",
    "LifecycleEvent",
    "MalformedStatementError",
    "ProvenanceError",
    "SignedStatement",
    "Statement",
    "build_statement",
    "keyid_of",
    "parse_statement",
    "sign_statement",
    "validate_details",
]

#: in-toto Statement v1 ``_type``.
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: The DSSE payload type of in-toto statements.
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: Our predicate: one lifecycle event of a component.
PREDICATE_TYPE = "https://trustbridge.dev/provenance/lifecycle/v1"
#: The media type of a :class:`SignedStatement` bundle.
BUNDLE_MEDIA_TYPE = "application/vnd.trustbridge.provenance+json;version=1"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$")
_MAX_TEXT = 200
_MAX_CHAIN = 10
_MAX_PAYLOAD = 64 * 1024


class MalformedStatementError(InputError):
    """A statement, its details or a bundle that is not of the expected form, or a signer
    that does not fit the chain it is given with."""

    def __init__(self, message: str, *, source: str = "", hint: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message, hint=hint)
        self.source = source


class ProvenanceError(ValidationError):
    """A provenance statement or chain that must not be relied on."""


class LifecycleEvent(enum.StrEnum):
    """The events of a component's life that statements record."""

    MANUFACTURED = "manufactured"
    FIRMWARE_INSTALLED = "firmware-installed"
    TESTED = "tested"
    SHIPPED = "shipped"
    RECEIVED = "received"
    INTEGRATED = "integrated"
    FIRMWARE_UPDATED = "firmware-updated"


# -- small checks -------------------------------------------------------------------------------


def _text(value: Any, what: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MalformedStatementError(f"{what} must be a non-empty string", source=source)
    if len(value) > _MAX_TEXT:
        raise MalformedStatementError(
            f"{what} is longer than {_MAX_TEXT} characters", source=source
        )
    if any(ord(ch) < 32 for ch in value):
        raise MalformedStatementError(f"{what} contains control characters", source=source)
    return value


def _uri(value: Any, what: str, source: str) -> str:
    text = _text(value, what, source)
    if not _URI.match(text):
        raise MalformedStatementError(f"{what} {text!r} is not an absolute URI", source=source)
    return text


def _sha256(value: Any, what: str, source: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise MalformedStatementError(
            f"{what} must be a SHA-256 digest as 64 lowercase hex digits", source=source
        )
    return value


def _object(
    value: Any,
    what: str,
    source: str,
    *,
    required: AbstractSet[str],
    optional: AbstractSet[str] = frozenset(),
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedStatementError(f"{what} must be an object", source=source)
    missing = required - set(value)
    if missing:
        raise MalformedStatementError(f"{what} lacks {', '.join(sorted(missing))}", source=source)
    unknown = set(value) - required - optional
    if unknown:
        raise MalformedStatementError(
            f"{what} has unknown member(s) {', '.join(sorted(map(str, unknown)))}",
            source=source,
        )
    return value


def _time_text(value: datetime) -> str:
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any, what: str, source: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedStatementError(f"{what} must be an ISO 8601 string", source=source)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedStatementError(
            f"{what} {value!r} is not an ISO 8601 date and time", source=source
        ) from None
    if parsed.tzinfo is None:
        raise MalformedStatementError(f"{what} {value!r} has no time zone", source=source)
    return ensure_utc(parsed)


def _b64_der(value: Any, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedStatementError(f"{what} is not a base64 string", source=source)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedStatementError(f"{what} is not base64", source=source) from None


def _certificate(value: Any, what: str, source: str) -> x509.Certificate:
    der = _b64_der(value, what, source)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedStatementError(
            f"{what} is not a DER certificate: {exc}", source=source
        ) from None


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def keyid_of(certificate: x509.Certificate) -> str:
    """The DSSE keyid of a signer: the hex SHA-256 of its certificate (DER)."""
    return hashlib.sha256(_der(certificate)).hexdigest()


def _uri_san(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "-"


# -- the component ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """A physical component: the subject of every statement about it.

    ``certificate`` is the component's own machine certificate where it has one; its subject's
    serial number and organization, where present, must be the component's.
    """

    serial_number: str
    model: str
    manufacturer: str
    #: The manufacturer's organizationIdentifier (ETSI EN 319 412-1), where known: organizations
    #: are then matched by identifier rather than by name.
    manufacturer_identifier: str | None = None
    #: The component's AAS ``globalAssetId``.
    global_asset_id: str | None = None
    certificate: x509.Certificate | None = None

    def __post_init__(self) -> None:
        source = "component"
        _text(self.serial_number, "serial number", source)
        _text(self.model, "model", source)
        _text(self.manufacturer, "manufacturer", source)
        if self.manufacturer_identifier is not None:
            _text(self.manufacturer_identifier, "manufacturer identifier", source)
        if self.global_asset_id is not None:
            _text(self.global_asset_id, "globalAssetId", source)
        if self.certificate is not None:
            if not isinstance(self.certificate, x509.Certificate):
                raise MalformedStatementError("certificate must be an X.509 certificate")
            serial = _attribute(self.certificate, NameOID.SERIAL_NUMBER)
            if serial is not None and serial != self.serial_number:
                raise MalformedStatementError(
                    f"component {self.serial_number}: its certificate names serial number "
                    f"{serial!r}"
                )
            organization = _attribute(self.certificate, NameOID.ORGANIZATION_NAME)
            if organization is not None and organization != self.manufacturer:
                raise MalformedStatementError(
                    f"component {self.serial_number}: its certificate names manufacturer "
                    f"{organization!r}, not {self.manufacturer!r}"
                )

    @classmethod
    def for_certificate(
        cls,
        certificate: x509.Certificate,
        *,
        global_asset_id: str | None = None,
        manufacturer_identifier: str | None = None,
    ) -> Component:
        """The component a trustbridge machine certificate names: serial number and
        manufacturer from its subject, the model from its common name ("<model> <serial>")."""
        serial = _attribute(certificate, NameOID.SERIAL_NUMBER)
        maker = _attribute(certificate, NameOID.ORGANIZATION_NAME)
        common = _attribute(certificate, NameOID.COMMON_NAME) or ""
        if not serial or not maker or not common.endswith(" " + serial):
            raise MalformedStatementError(
                f"{certificate.subject.rfc4514_string()} is not a machine certificate naming "
                "a serial number, a manufacturer and a model",
                hint="name the component by --component, --model and --manufacturer",
            )
        return cls(
            serial_number=serial,
            model=common[: -len(serial) - 1],
            manufacturer=maker,
            manufacturer_identifier=manufacturer_identifier,
            global_asset_id=global_asset_id,
            certificate=certificate,
        )

    @property
    def id(self) -> str:
        """The name the CLI uses for the component: its serial number."""
        return self.serial_number

    @cached_property
    def uri(self) -> str:
        """The certificate's URI SAN, else ``urn:trustbridge:component:<manufacturer>:<model>:
        <serial>`` (manufacturer as a lowercase slug, model and serial percent-encoded)."""
        if self.certificate is not None:
            san = _uri_san(self.certificate)
            if san:
                return san
        model = quote(self.model, safe="-._~")
        serial = quote(self.serial_number, safe="-._~")
        return f"urn:trustbridge:component:{_slug(self.manufacturer)}:{model}:{serial}"

    @cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of the certificate (DER) if there is one, else of the URI (UTF-8)."""
        data = _der(self.certificate) if self.certificate is not None else self.uri.encode()
        return hashlib.sha256(data).hexdigest()

    def subject(self) -> dict[str, Any]:
        """The in-toto subject (ResourceDescriptor) naming this component."""
        annotations: dict[str, str] = {
            "serialNumber": self.serial_number,
            "model": self.model,
            "manufacturer": self.manufacturer,
        }
        if self.manufacturer_identifier is not None:
            annotations["manufacturerIdentifier"] = self.manufacturer_identifier
        if self.global_asset_id is not None:
            annotations["globalAssetId"] = self.global_asset_id
        return {"name": self.uri, "digest": {"sha256": self.digest}, "annotations": annotations}

    def to_json(self) -> dict[str, Any]:
        """The predicate's ``component`` member."""
        data: dict[str, Any] = {
            "serial_number": self.serial_number,
            "model": self.model,
            "manufacturer": self.manufacturer,
            "uri": self.uri,
        }
        if self.manufacturer_identifier is not None:
            data["manufacturer_identifier"] = self.manufacturer_identifier
        if self.global_asset_id is not None:
            data["global_asset_id"] = self.global_asset_id
        if self.certificate is not None:
            data["certificate"] = base64.b64encode(_der(self.certificate)).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> Component:
        value = _object(
            data,
            "component",
            source,
            required={"serial_number", "model", "manufacturer", "uri"},
            optional={"manufacturer_identifier", "global_asset_id", "certificate"},
        )
        certificate = None
        if "certificate" in value:
            certificate = _certificate(value["certificate"], "component certificate", source)
        try:
            component = cls(
                serial_number=_text(value["serial_number"], "serial_number", source),
                model=_text(value["model"], "model", source),
                manufacturer=_text(value["manufacturer"], "manufacturer", source),
                manufacturer_identifier=(
                    _text(value["manufacturer_identifier"], "manufacturer_identifier", source)
                    if "manufacturer_identifier" in value
                    else None
                ),
                global_asset_id=(
                    _text(value["global_asset_id"], "global_asset_id", source)
                    if "global_asset_id" in value
                    else None
                ),
                certificate=certificate,
            )
        except MalformedStatementError as exc:
            if exc.source:
                raise
            raise MalformedStatementError(exc.message, source=source) from None
        if value["uri"] != component.uri:
            raise MalformedStatementError(
                f"component uri {value['uri']!r} is not the component's URI {component.uri!r}",
                source=source,
            )
        return component

    def same_as(self, other: Component) -> bool:
        """Whether ``other`` names the same component: same URI, digest and names."""
        return self.subject() == other.subject()


# -- event details ------------------------------------------------------------------------------


def _party(value: Any, what: str, source: str) -> dict[str, str]:
    party = _object(value, what, source, required={"name", "identifier"})
    return {
        "name": _text(party["name"], f"{what} name", source),
        "identifier": _text(party["identifier"], f"{what} identifier", source),
    }


def _software(details: Mapping[str, Any], source: str) -> dict[str, Any]:
    software = _object(
        details["software"], "software", source, required={"name", "version", "sha256"}
    )
    sbom = _object(details["sbom"], "sbom", source, required={"sha256"}, optional={"uri"})
    result: dict[str, Any] = {
        "software": {
            "name": _text(software["name"], "software name", source),
            "version": _text(software["version"], "software version", source),
            "sha256": _sha256(software["sha256"], "software sha256", source),
        },
        "sbom": {"sha256": _sha256(sbom["sha256"], "sbom sha256", source)},
    }
    if "uri" in sbom:
        result["sbom"]["uri"] = _uri(sbom["uri"], "sbom uri", source)
    return result


def validate_details(
    event: LifecycleEvent, details: Mapping[str, Any], *, source: str = "details"
) -> dict[str, Any]:
    """The details of ``event`` checked and copied; :class:`MalformedStatementError` names
    what is wrong.

    - manufactured: none (``{}``);
    - tested: ``result`` (``pass``/``fail``), optional ``report_sha256``, ``station``;
    - shipped: ``recipient`` (``name``, ``identifier``), optional ``reference``;
    - received: ``sender`` (``name``, ``identifier``), optional ``reference``;
    - integrated: ``product`` (``serial_number``, ``model``, ``manufacturer``, ``uri``);
    - firmware-installed / firmware-updated: ``software`` (``name``, ``version``, ``sha256``)
      and ``sbom`` (``sha256``, optional ``uri``).
    """
    what = f"{event} details"
    if event is LifecycleEvent.MANUFACTURED:
        _object(details, what, source, required=set())
        return {}
    if event is LifecycleEvent.TESTED:
        value = _object(
            details, what, source, required={"result"}, optional={"report_sha256", "station"}
        )
        if value["result"] not in ("pass", "fail"):
            raise MalformedStatementError(
                f"test result {value['result']!r} is neither 'pass' nor 'fail'", source=source
            )
        result: dict[str, Any] = {"result": value["result"]}
        if "report_sha256" in value:
            result["report_sha256"] = _sha256(value["report_sha256"], "report_sha256", source)
        if "station" in value:
            result["station"] = _text(value["station"], "station", source)
        return result
    if event in (LifecycleEvent.SHIPPED, LifecycleEvent.RECEIVED):
        party = "recipient" if event is LifecycleEvent.SHIPPED else "sender"
        value = _object(details, what, source, required={party}, optional={"reference"})
        result = {party: _party(value[party], party, source)}
        if "reference" in value:
            result["reference"] = _text(value["reference"], "reference", source)
        return result
    if event is LifecycleEvent.INTEGRATED:
        value = _object(details, what, source, required={"product"})
        product = _object(
            value["product"],
            "product",
            source,
            required={"serial_number", "model", "manufacturer", "uri"},
        )
        return {
            "product": {
                "serial_number": _text(product["serial_number"], "product serial_number", source),
                "model": _text(product["model"], "product model", source),
                "manufacturer": _text(product["manufacturer"], "product manufacturer", source),
                "uri": _uri(product["uri"], "product uri", source),
            }
        }
    value = _object(details, what, source, required={"software", "sbom"})
    return _software(value, source)


# -- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """A parsed lifecycle statement."""

    component: Component
    event: LifecycleEvent
    details: Mapping[str, Any]
    #: Hex SHA-256 of the DSSE payload of the component's previous statement; None for the first.
    previous: str | None
    #: The time the signer claims: shown, never used for ordering or validity.
    claimed_time: datetime
    #: The in-toto subject entry.
    subject: Mapping[str, Any]


def build_statement(
    component: Component,
    event: LifecycleEvent,
    *,
    details: Mapping[str, Any],
    previous: SignedStatement | None,
    claimed_time: datetime,
) -> bytes:
    """The canonical JSON payload (sorted keys, no whitespace, UTF-8) of an in-toto Statement
    recording ``event`` of ``component``, linked to the component's ``previous`` statement."""
    event = LifecycleEvent(event)
    checked = validate_details(event, details)
    previous_digest: str | None = None
    if previous is not None:
        before = previous.statement
        if not before.component.same_as(component):
            raise MalformedStatementError(
                f"the previous statement {previous.digest[:12]} is about "
                f"{before.component.id}, not {component.id}",
                source=f"{event} statement of {component.id}",
            )
        previous_digest = previous.digest
    predicate: dict[str, Any] = {
        "event": event.value,
        "component": component.to_json(),
        "previous": previous_digest,
        "claimed_time": _time_text(claimed_time),
        "details": checked,
    }
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [component.subject()],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }
    )


def parse_statement(payload: bytes, *, source: str) -> Statement:
    """Parse and check a statement payload: in-toto v1, our predicate type, one subject that
    is the predicate's component, details that fit the event."""
    if len(payload) > _MAX_PAYLOAD:
        raise MalformedStatementError(
            f"the statement is larger than {_MAX_PAYLOAD} bytes", source=source
        )
    try:
        data = parse_json(payload)
    except JwsFormatError as exc:
        raise MalformedStatementError(f"the statement is {exc}", source=source) from None
    statement = _object(
        data,
        "the statement",
        source,
        required={"_type", "subject", "predicateType", "predicate"},
    )
    if statement["_type"] != STATEMENT_TYPE:
        raise MalformedStatementError(
            f"_type {statement['_type']!r} is not {STATEMENT_TYPE}", source=source
        )
    if statement["predicateType"] != PREDICATE_TYPE:
        raise MalformedStatementError(
            f"predicateType {statement['predicateType']!r} is not {PREDICATE_TYPE}",
            source=source,
        )
    subjects = statement["subject"]
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise MalformedStatementError("the statement must have exactly one subject", source=source)
    predicate = _object(
        statement["predicate"],
        "the predicate",
        source,
        required={"event", "component", "previous", "claimed_time", "details"},
    )
    try:
        event = LifecycleEvent(predicate["event"])
    except ValueError:
        raise MalformedStatementError(
            f"unknown lifecycle event {predicate['event']!r}", source=source
        ) from None
    component = Component.from_json(predicate["component"], source=source)
    if subjects[0] != component.subject():
        raise MalformedStatementError(
            "the subject is not the predicate's component (name, digest and annotations "
            "must match it)",
            source=source,
        )
    previous = predicate["previous"]
    if previous is not None:
        previous = _sha256(previous, "previous", source)
    return Statement(
        component=component,
        event=event,
        details=validate_details(event, predicate["details"], source=source),
        previous=previous,
        claimed_time=_parse_time(predicate["claimed_time"], "claimed_time", source),
        subject=component.subject(),
    )


# -- the signed bundle --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedStatement:
    """A statement in its DSSE envelope, the signer's chain (leaf first) and optionally an
    RFC 3161 token over the DSSE signature (carried here, verified by the caller)."""

    envelope: Envelope
    chain: tuple[x509.Certificate, ...]
    timestamp: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        if not self.chain or not all(isinstance(c, x509.Certificate) for c in self.chain):
            raise MalformedStatementError("a signed statement needs the signer's certificate")
        if len(self.chain) > _MAX_CHAIN:
            raise MalformedStatementError(
                f"the chain has {len(self.chain)} certificates; at most {_MAX_CHAIN} are accepted"
            )
        if self.envelope.payload_type != PAYLOAD_TYPE:
            raise MalformedStatementError(
                f"payload type {self.envelope.payload_type!r} is not {PAYLOAD_TYPE}"
            )
        if len(self.envelope.signatures) != 1:
            raise MalformedStatementError(
                f"a signed statement has exactly one signature, not {len(self.envelope.signatures)}"
            )
        keyid = self.envelope.signatures[0].keyid
        if keyid != keyid_of(self.chain[0]):
            raise MalformedStatementError(
                f"the signature's keyid {keyid[:16] or '(none)'} is not the SHA-256 of the "
                "signer's certificate"
            )
        if self.timestamp is not None and (
            not isinstance(self.timestamp, bytes) or not self.timestamp
        ):
            raise MalformedStatementError("the timestamp must be a non-empty DER token")

    @property
    def leaf(self) -> x509.Certificate:
        """The signer's certificate."""
        return self.chain[0]

    @property
    def payload(self) -> bytes:
        return self.envelope.payload

    @property
    def signature(self) -> bytes:
        """The DSSE signature (what an RFC 3161 timestamp is requested over)."""
        return self.envelope.signatures[0].sig

    @cached_property
    def digest(self) -> str:
        """Hex SHA-256 of the DSSE payload: what the next statement's ``previous`` names."""
        return hashlib.sha256(self.envelope.payload).hexdigest()

    @cached_property
    def statement(self) -> Statement:
        """The parsed payload (the signature is not checked here)."""
        return parse_statement(self.envelope.payload, source=f"statement {self.digest[:12]}")

    def to_json(self) -> dict[str, Any]:
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "dsseEnvelope": self.envelope.to_json(),
            "verificationMaterial": {
                "x5c": x5c_encode(self.chain),
                "timestamp": (
                    base64.b64encode(self.timestamp).decode("ascii")
                    if self.timestamp is not None
                    else None
                ),
            },
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes of the bundle (what is logged)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> SignedStatement:
        bundle = _object(
            data,
            "the bundle",
            source,
            required={"mediaType", "dsseEnvelope", "verificationMaterial"},
        )
        if bundle["mediaType"] != BUNDLE_MEDIA_TYPE:
            raise MalformedStatementError(
                f"mediaType {bundle['mediaType']!r} is not {BUNDLE_MEDIA_TYPE}", source=source
            )
        material = _object(
            bundle["verificationMaterial"],
            "verificationMaterial",
            source,
            required={"x5c"},
            optional={"timestamp"},
        )
        x5c = material["x5c"]
        if not isinstance(x5c, list) or not x5c:
            raise MalformedStatementError("x5c must be a non-empty list", source=source)
        if len(x5c) > _MAX_CHAIN:
            raise MalformedStatementError(
                f"x5c holds {len(x5c)} certificates; at most {_MAX_CHAIN} are accepted",
                source=source,
            )
        chain = tuple(
            _certificate(entry, f"x5c entry {index}", source) for index, entry in enumerate(x5c)
        )
        raw_timestamp = material.get("timestamp")
        timestamp = None if raw_timestamp is None else _b64_der(raw_timestamp, "timestamp", source)
        try:
            envelope = Envelope.from_json(bundle["dsseEnvelope"], source=source)
            return cls(envelope, chain, timestamp)
        except EnvelopeFormatError as exc:
            raise MalformedStatementError(exc.message) from None
        except MalformedStatementError as exc:
            if exc.source:
                raise
            raise MalformedStatementError(exc.message, source=source) from None

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str) -> SignedStatement:
        try:
            parsed = parse_json(data)
        except JwsFormatError as exc:
            raise MalformedStatementError(f"the bundle is {exc}", source=source) from None
        return cls.from_json(parsed, source=source)


def _spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return data


def sign_statement(
    payload: bytes, signer: Signer, chain: Sequence[x509.Certificate]
) -> SignedStatement:
    """Sign a statement payload (from :func:`build_statement`) in a DSSE envelope.

    ``chain``: the signer's certificate first, then its issuers. Refuses a signer whose key is
    not the one ``chain[0]`` certifies, and a payload that is not a lifecycle statement.
    """
    if not chain:
        raise MalformedStatementError("the signer's certificate chain is empty")
    leaf = chain[0]
    if _spki(signer.public_key) != _spki(leaf.public_key()):
        raise MalformedStatementError(
            f"the key of {signer.description} is not the key of the certificate "
            f"{leaf.subject.rfc4514_string()}",
            hint="sign with the key that belongs to the first certificate of the chain",
        )
    parse_statement(payload, source="statement to sign")
    envelope = sign_envelope(PAYLOAD_TYPE, payload, signer, keyid=keyid_of(leaf))
    return SignedStatement(envelope, tuple(chain))
