"""ETSI TS 119 612 trusted lists (the EU XML format): read them, and verify their signatures.

A trusted list names trust service providers and their services, each with its status over
time; a list of trusted lists (LOTL) points at national lists and announces the certificates
allowed to sign each of them. :func:`verify_trusted_list` checks the XAdES enveloped signature
(TS 119 612 clause 5.7) with one of the signer certificates the caller trusts, at the list's
own ``ListIssueDateTime``; :func:`parse_trusted_list` reads a list without verifying it.

The model is plain frozen data. :func:`signers_for` reads a verified LOTL's pointers for a
territory; :func:`status_at` and :func:`is_granted` answer "was this service trusted then?".
The EU's mutual-recognition LOTL also carries, per third country, the equivalences between
that country's service types, statuses and qualifiers and the EU's own
(:class:`MutualRecognition`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import exceptions as signxml_errors
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESVerifier

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, TrustbridgeError, ValidationError

__all__ = [
    "GRANTED_STATUSES",
    "MAX_LIST_SIZE",
    "TSL_MIME_TYPE",
    "DigitalIdentity",
    "EtsiError",
    "EtsiParseError",
    "EtsiSignatureError",
    "EtsiSignerError",
    "EtsiStatusError",
    "EtsiTrustedList",
    "MutualRecognition",
    "QualifierEquivalence",
    "ServiceEquivalence",
    "ServiceTypeRef",
    "ServiceHistoryEntry",
    "StatusEquivalence",
    "TrustService",
    "TrustServiceProvider",
    "TslPointer",
    "is_granted",
    "parse_trusted_list",
    "signers_for",
    "status_at",
    "verify_trusted_list",
]

#: Largest list accepted, in bytes. National lists reach a few MB; this leaves room.
MAX_LIST_SIZE = 32 * 1024 * 1024
#: The MIME type of an XML trusted list in a pointer (TS 119 612 clause 5.3.13).
TSL_MIME_TYPE = "application/vnd.etsi.tsl+xml"

_STATUS = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
#: Service status URIs under which a service is trusted (TS 119 612 clause 5.5.4). Every other
#: URI, including ones this table does not know, is not granted.
GRANTED_STATUSES: frozenset[str] = frozenset(
    {
        # TS 119 612 V2 (eIDAS, from 2016-07-01): qualified and approved.
        _STATUS + "granted",
        # TS 119 612 V2: a non-qualified service recognised under national law.
        _STATUS + "recognisedatnationallevel",
        # TS 119 612 V1 (Directive 1999/93/EC), kept in service histories before 2016-07-01:
        _STATUS + "undersupervision",
        # still supervised while the service is being ceased
        _STATUS + "supervisionincessation",
        _STATUS + "accredited",
        _STATUS + "setbynationallaw",
    }
)
# Not granted, for the record: withdrawn, deprecatedatnationallevel (V2); supervisionceased,
# supervisionrevoked, accreditationceased, accreditationrevoked, deprecatedbynationallaw (V1).

_TSL = "http://uri.etsi.org/02231/v2#"
_TSLX = "http://uri.etsi.org/02231/v2/additionaltypes#"
_DS = "http://www.w3.org/2000/09/xmldsig#"
_MRA = "http://ec.europa.eu/tools/lotl/mra/schema/v2#"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_NS = {"t": _TSL, "x": _TSLX, "ds": _DS, "m": _MRA}

_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments",
    }
)
_SIGNED_PROPERTIES = "http://uri.etsi.org/01903#SignedProperties"


# -- errors -----------------------------------------------------------------------------------


class EtsiError(TrustbridgeError):
    """Base class of the errors about ETSI trusted lists; ``source`` names the list."""

    def __init__(self, message: str, *, source: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source


class EtsiParseError(EtsiError, InputError):
    """A trusted list that is not well-formed, too large, unsafe (a DTD) or misses a field."""


class EtsiSignerError(EtsiError, ValidationError):
    """A list signed by a certificate that is not among the configured signers, or not valid
    at the list's issue time; or a signer lookup in a LOTL that was not verified."""


class EtsiSignatureError(EtsiError, ValidationError):
    """A signature whose reference digest or signature value does not verify.

    ``reference`` says which reference failed (``None`` for the signature value itself).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        reference: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, source=source, hint=hint)
        self.reference = reference


class EtsiStatusError(EtsiError, ValidationError):
    """A service that had no status at the time asked about (it was not yet listed)."""


# -- model ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DigitalIdentity:
    """One ServiceDigitalIdentity (TS 119 612 clause 5.5.3): its X.509 certificates, and the
    subject names and subject key identifiers given besides or instead of a certificate."""

    certificates: tuple[x509.Certificate, ...] = ()
    subject_names: tuple[str, ...] = ()
    skis: tuple[bytes, ...] = ()


@dataclasses.dataclass(frozen=True)
class ServiceHistoryEntry:
    """A ServiceHistoryInstance (clause 5.6): the status a service had from ``starting_time``."""

    status: str
    starting_time: datetime
    service_type: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "starting_time", ensure_utc(self.starting_time))


@dataclasses.dataclass(frozen=True)
class TrustService:
    """A TSPService (clause 5.5) with its current status and its history."""

    service_type: str
    name: str
    status: str
    status_starting_time: datetime
    identities: tuple[DigitalIdentity, ...]
    additional_info: tuple[str, ...] = ()
    history: tuple[ServiceHistoryEntry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status_starting_time", ensure_utc(self.status_starting_time))

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """Every certificate of the service's digital identities."""
        return _certificates(self.identities)


@dataclasses.dataclass(frozen=True)
class TrustServiceProvider:
    """A TrustServiceProvider (clause 5.4): its name, trade names and services."""

    name: str
    trade_names: tuple[str, ...]
    services: tuple[TrustService, ...]


@dataclasses.dataclass(frozen=True)
class ServiceTypeRef:
    """A service type in an MRA equivalence, refined by AdditionalServiceInformation URIs."""

    service_type: str
    additional_info: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class StatusEquivalence:
    """Statuses of the pointing party that correspond to statuses of the pointed party.

    ``valid`` tells a TrustServiceTSLStatusValidEquivalence (the statuses mean "trusted")
    from an InvalidEquivalence.
    """

    valid: bool
    pointing_statuses: tuple[str, ...]
    pointed_statuses: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class QualifierEquivalence:
    """A qualifier URI of the pointing party and its equivalent of the pointed party."""

    pointing_qualifier: str
    pointed_qualifier: str


@dataclasses.dataclass(frozen=True)
class ServiceEquivalence:
    """One TrustServiceEquivalenceInformation: how a kind of trust service of the pointed
    party (a third country) maps onto the pointing party's (the EU's).

    The certificate content equivalences are kept only by their context URIs
    (``http://ec.europa.eu/tools/lotl/mra/QcCompliance`` and the like).
    """

    legal_identifier: str
    status: str
    status_starting_time: datetime
    pointing_types: tuple[ServiceTypeRef, ...]
    pointed_types: tuple[ServiceTypeRef, ...]
    statuses: tuple[StatusEquivalence, ...]
    qualifiers: tuple[QualifierEquivalence, ...]
    certificate_contexts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MutualRecognition:
    """A MutualRecognitionAgreementInformation in a LOTL pointer (EU MRA pilot schema v2).

    The *pointing* party publishes the LOTL (the EU); the *pointed* party is the third country
    whose list the pointer names.
    """

    depth: int | None
    technical_type: str | None
    version: str | None
    pointing_legislation: str | None
    pointed_legislation: str | None
    equivalences: tuple[ServiceEquivalence, ...]


@dataclasses.dataclass(frozen=True)
class TslPointer:
    """An OtherTSLPointer (clause 5.3.13): where another list is and who may sign it."""

    territory: str
    location: str
    mime_type: str | None
    tsl_type: str | None
    identities: tuple[DigitalIdentity, ...]
    mra: MutualRecognition | None = None

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The certificates allowed to sign the list pointed at."""
        return _certificates(self.identities)


@dataclasses.dataclass(frozen=True)
class EtsiTrustedList:
    """A trusted list or list of trusted lists (scheme information, clause 5.3; TSPs, 5.4).

    ``signer`` is the certificate the signature was verified with, ``None`` for a list that
    was only parsed.
    """

    source: str
    territory: str
    tsl_type: str
    sequence_number: int
    version: int
    issued_at: datetime
    next_update: datetime | None
    operator_name: str
    pointers: tuple[TslPointer, ...]
    providers: tuple[TrustServiceProvider, ...]
    signer: x509.Certificate | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "issued_at", ensure_utc(self.issued_at))
        if self.next_update is not None:
            object.__setattr__(self, "next_update", ensure_utc(self.next_update))


# -- public functions -------------------------------------------------------------------------


def parse_trusted_list(data: bytes, *, source: str) -> EtsiTrustedList:
    """Read a trusted list without verifying its signature.

    Raises :class:`EtsiParseError` for input that is too large, not well-formed, carries a DTD
    or lacks a mandatory field.
    """
    return _Reader(source).trusted_list(_parse_xml(data, source=source))


def verify_trusted_list(
    data: bytes, *, signers: Sequence[x509.Certificate], source: str
) -> EtsiTrustedList:
    """Parse a trusted list and verify its XAdES enveloped signature with one of ``signers``.

    The certificate in the signature's KeyInfo must be one of ``signers`` (compared by DER),
    and valid at the list's ``ListIssueDateTime``; both references (the whole list and the
    XAdES signed properties) and the signature value must verify. The model is read from
    the signed content only.

    Raises :class:`EtsiParseError`, :class:`EtsiSignerError` or :class:`EtsiSignatureError`.
    """
    root = _parse_xml(data, source=source)
    reader = _Reader(source)
    # Read before verifying only to pick the validation time; it is signed like the rest.
    issued_at = reader.time(reader.child(root, "t:SchemeInformation"), "t:ListIssueDateTime")
    signature = _single_signature(root, source=source)
    signer = _select_signer(signature, signers, source=source)
    if not signer.not_valid_before_utc <= issued_at <= signer.not_valid_after_utc:
        raise EtsiSignerError(
            f"{source}: signing certificate {_describe(signer)} was not valid at the list's "
            f"issue time {issued_at.isoformat()} (valid {signer.not_valid_before_utc.isoformat()}"
            f" to {signer.not_valid_after_utc.isoformat()})",
            source=source,
        )
    references = _check_references(signature, source=source)
    config = XAdESSignatureConfiguration(
        expect_references=2, verification_time=issued_at, location="./"
    )
    try:
        results = XAdESVerifier().verify(root, x509_cert=signer, expect_config=config)
    except signxml_errors.InvalidDigest as exc:
        raise _digest_error(str(exc), references, source=source) from exc
    except signxml_errors.InvalidCertificate as exc:  # a subclass of InvalidSignature
        raise EtsiSignerError(f"{source}: {exc}", source=source) from exc
    except signxml_errors.InvalidSignature as exc:
        raise EtsiSignatureError(
            f"{source}: the signature value does not verify with {_describe(signer)}: {exc}",
            source=source,
        ) from exc
    except (signxml_errors.SignXMLException, etree.LxmlError) as exc:
        # malformed signature elements, unsupported algorithms, XML Schema violations
        raise EtsiSignatureError(
            f"{source}: the signature cannot be verified: {exc}", source=source
        ) from exc
    signed = results[references.index(_WHOLE_LIST)].signed_xml
    if signed is None:  # pragma: no cover - signxml re-parses the whole-list payload
        raise EtsiSignatureError(f"{source}: the signed content is not XML", source=source)
    verified = reader.trusted_list(signed)
    return dataclasses.replace(verified, signer=signer)


def signers_for(lotl: EtsiTrustedList, territory: str) -> tuple[x509.Certificate, ...]:
    """The certificates a verified LOTL announces for the XML trusted list of ``territory``.

    Only pointers with MIME type :data:`TSL_MIME_TYPE` count; an unknown territory gives an
    empty tuple (which :func:`verify_trusted_list` refuses). Raises :class:`EtsiSignerError`
    for a LOTL that was only parsed.
    """
    if lotl.signer is None:
        raise EtsiSignerError(
            f"{lotl.source}: this list was parsed, not verified: its pointers cannot announce "
            "signers",
            source=lotl.source,
            hint="read the LOTL with verify_trusted_list and the configured LOTL signer",
        )
    wanted = territory.strip().upper()
    found: list[x509.Certificate] = []
    for pointer in lotl.pointers:
        if pointer.territory.upper() == wanted and pointer.mime_type == TSL_MIME_TYPE:
            found.extend(pointer.certificates)
    return _unique(found)


def status_at(service: TrustService, when: datetime) -> str:
    """The status URI of ``service`` in force at ``when``, from its current status and history.

    Raises :class:`EtsiStatusError` when ``when`` precedes every known status.
    """
    when = ensure_utc(when)
    changes = [(service.status_starting_time, service.status)]
    changes.extend((change.starting_time, change.status) for change in service.history)
    in_force = [change for change in changes if change[0] <= when]
    if not in_force:
        first = min(start for start, _ in changes)
        raise EtsiStatusError(
            f"service {service.name!r} had no status at {when.isoformat()}; its first status "
            f"starts at {first.isoformat()}"
        )
    return max(in_force, key=lambda change: change[0])[1]


def is_granted(status_uri: str) -> bool:
    """Whether a service status URI means the service is trusted (:data:`GRANTED_STATUSES`)."""
    return status_uri.strip() in GRANTED_STATUSES


# -- XML and signature ------------------------------------------------------------------------

#: How errors name the two references of a trusted list's signature.
_WHOLE_LIST = "the list itself"
_PROPERTIES = "the XAdES signed properties"
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_NO_DTD = "{source}: a document type declaration (DTD) is not allowed in a trusted list"


def _parse_xml(data: bytes, *, source: str) -> etree._Element:
    if len(data) > MAX_LIST_SIZE:
        raise EtsiParseError(
            f"{source}: {len(data)} bytes is more than the {MAX_LIST_SIZE} a trusted list may have",
            source=source,
        )
    # No DTD at all: refused before libxml2 sees its entity declarations (billion laughs, XXE).
    root_start = _FIRST_ELEMENT.search(data)
    if b"<!DOCTYPE" in data[: root_start.start() if root_start else len(data)]:
        raise EtsiParseError(_NO_DTD.format(source=source), source=source)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise EtsiParseError(
            f"{source}: not well-formed XML: {exc.msg}", source=source, hint="fetch the list again"
        ) from exc
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise EtsiParseError(_NO_DTD.format(source=source), source=source)
    if root.tag != f"{{{_TSL}}}TrustServiceStatusList":
        raise EtsiParseError(
            f"{source}: the root element is {etree.QName(root).text}, "
            "not a TS 119 612 TrustServiceStatusList",
            source=source,
        )
    return root


def _single_signature(root: etree._Element, *, source: str) -> etree._Element:
    signatures = root.findall("ds:Signature", _NS)
    if len(signatures) != 1:
        raise EtsiSignatureError(
            f"{source}: expected one enveloped ds:Signature under the list, found "
            f"{len(signatures)}",
            source=source,
        )
    return signatures[0]


def _check_references(signature: etree._Element, *, source: str) -> list[str]:
    """Name each reference of SignedInfo; insist on one covering the whole list (clause 5.7)."""
    names: list[str] = []
    for reference in signature.findall("ds:SignedInfo/ds:Reference", _NS):
        transforms = [
            t.get("Algorithm", "") for t in reference.findall("ds:Transforms/ds:Transform", _NS)
        ]
        if reference.get("URI") == "":
            # The whole document, less this signature: nothing may filter content out.
            if _ENVELOPED not in transforms or not set(transforms) <= {_ENVELOPED, *_C14N}:
                raise EtsiSignatureError(
                    f"{source}: the reference to the whole list has transforms {transforms}; "
                    "only enveloped-signature and canonicalization are accepted",
                    source=source,
                    reference=_WHOLE_LIST,
                )
            names.append(_WHOLE_LIST)
        elif reference.get("Type") == _SIGNED_PROPERTIES:
            names.append(_PROPERTIES)
        else:
            names.append(f"URI={reference.get('URI')!r}")
    if names.count(_WHOLE_LIST) != 1 or names.count(_PROPERTIES) != 1 or len(names) != 2:
        raise EtsiSignatureError(
            f'{source}: the signature must have two references, the whole list (URI="") and '
            f"the XAdES signed properties; it has {names}",
            source=source,
        )
    return names


def _select_signer(
    signature: etree._Element, signers: Sequence[x509.Certificate], *, source: str
) -> x509.Certificate:
    if not signers:
        raise EtsiSignerError(
            f"{source}: no signer certificates are configured for this list",
            source=source,
            hint="for a national list, take its signers from the verified LOTL (signers_for)",
        )
    embedded = [
        _load_certificate(element.text, source=source, where="the signature's KeyInfo")
        for element in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    ]
    if not embedded:
        raise EtsiSignerError(
            f"{source}: the signature's KeyInfo carries no X509Certificate", source=source
        )
    allowed = {cert.public_bytes(Encoding.DER) for cert in signers}
    for cert in embedded:
        if cert.public_bytes(Encoding.DER) in allowed:
            return cert
    raise EtsiSignerError(
        f"{source}: signed by {_describe(embedded[0])}, which is not among the "
        f"{len(signers)} configured signer(s): " + "; ".join(_describe(cert) for cert in signers),
        source=source,
        hint="a national list must be signed by a certificate its LOTL pointer announces",
    )


def _digest_error(message: str, references: list[str], *, source: str) -> EtsiSignatureError:
    match = re.search(r"reference (\d+)", message)
    if match and int(match.group(1)) < len(references):
        index = int(match.group(1))
        what = references[index]
        return EtsiSignatureError(
            f"{source}: digest mismatch in reference {index + 1} of {len(references)} ({what}): "
            "the content was changed after signing",
            source=source,
            reference=what,
        )
    if "certificate digest" in message:
        return EtsiSignatureError(
            f"{source}: the XAdES SigningCertificate digest does not match the KeyInfo certificate",
            source=source,
            reference=_PROPERTIES,
        )
    return EtsiSignatureError(f"{source}: digest mismatch: {message}", source=source)


# -- reading the model ------------------------------------------------------------------------


class _Reader:
    """Builds the model from a parsed list; every error names the source and the element."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str) -> EtsiParseError:
        return EtsiParseError(f"{self.source}: {message}", source=self.source)

    def trusted_list(self, root: etree._Element) -> EtsiTrustedList:
        info = self.child(root, "t:SchemeInformation")
        next_update = info.find("t:NextUpdate/t:dateTime", _NS)
        return EtsiTrustedList(
            source=self.source,
            territory=self.text(info, "t:SchemeTerritory"),
            tsl_type=self.text(info, "t:TSLType"),
            sequence_number=self.integer(info, "t:TSLSequenceNumber"),
            version=self.integer(info, "t:TSLVersionIdentifier"),
            issued_at=self.time(info, "t:ListIssueDateTime"),
            next_update=None if next_update is None else self.time(info, "t:NextUpdate/t:dateTime"),
            operator_name=self.name(self.child(info, "t:SchemeOperatorName")),
            pointers=tuple(
                self.pointer(p)
                for p in info.iterfind("t:PointersToOtherTSL/t:OtherTSLPointer", _NS)
            ),
            providers=tuple(
                self.provider(p)
                for p in root.iterfind("t:TrustServiceProviderList/t:TrustServiceProvider", _NS)
            ),
        )

    # scheme information

    def pointer(self, element: etree._Element) -> TslPointer:
        location = self.text(element, "t:TSLLocation")
        other = "t:AdditionalInformation/t:OtherInformation/"
        territory = self.optional(element, other + "t:SchemeTerritory")
        if territory is None:
            raise self.fail(f"the pointer to {location} names no SchemeTerritory")
        mra = element.find(other + "m:MutualRecognitionAgreementInformation", _NS)
        return TslPointer(
            territory=territory,
            location=location,
            mime_type=self.optional(element, other + "x:MimeType"),
            tsl_type=self.optional(element, other + "t:TSLType"),
            identities=tuple(
                self.identity(identity, where=f"the pointer to {location}")
                for identity in element.iterfind(
                    "t:ServiceDigitalIdentities/t:ServiceDigitalIdentity", _NS
                )
            ),
            mra=None if mra is None else self.mutual_recognition(mra),
        )

    # providers and services

    def provider(self, element: etree._Element) -> TrustServiceProvider:
        info = self.child(element, "t:TSPInformation")
        name = self.name(self.child(info, "t:TSPName"))
        return TrustServiceProvider(
            name=name,
            trade_names=_unique_text(n.text for n in info.iterfind("t:TSPTradeName/t:Name", _NS)),
            services=tuple(
                self.service(service, provider=name)
                for service in element.iterfind("t:TSPServices/t:TSPService", _NS)
            ),
        )

    def service(self, element: etree._Element, *, provider: str) -> TrustService:
        info = self.child(element, "t:ServiceInformation")
        name = self.name(self.child(info, "t:ServiceName"))
        where = f"service {name!r} of {provider!r}"
        return TrustService(
            service_type=self.text(info, "t:ServiceTypeIdentifier"),
            name=name,
            status=self.text(info, "t:ServiceStatus"),
            status_starting_time=self.time(info, "t:StatusStartingTime"),
            identities=tuple(
                self.identity(identity, where=where)
                for identity in info.iterfind("t:ServiceDigitalIdentity", _NS)
            ),
            additional_info=_unique_text(
                uri.text
                for uri in info.iterfind(
                    "t:ServiceInformationExtensions/t:Extension/t:AdditionalServiceInformation/t:URI",
                    _NS,
                )
            ),
            history=tuple(
                ServiceHistoryEntry(
                    status=self.text(instance, "t:ServiceStatus"),
                    starting_time=self.time(instance, "t:StatusStartingTime"),
                    service_type=self.text(instance, "t:ServiceTypeIdentifier"),
                )
                for instance in element.iterfind("t:ServiceHistory/t:ServiceHistoryInstance", _NS)
            ),
        )

    def identity(self, element: etree._Element, *, where: str) -> DigitalIdentity:
        certificates: list[x509.Certificate] = []
        names: list[str] = []
        skis: list[bytes] = []
        for digital_id in element.iterfind("t:DigitalId", _NS):
            for child in digital_id:
                if child.tag == f"{{{_TSL}}}X509Certificate":
                    certificates.append(
                        _load_certificate(child.text, source=self.source, where=where)
                    )
                elif child.tag == f"{{{_TSL}}}X509SubjectName" and child.text:
                    names.append(child.text.strip())
                elif child.tag == f"{{{_TSL}}}X509SKI" and child.text:
                    skis.append(
                        _b64(child.text, source=self.source, where=f"an X509SKI of {where}")
                    )
        return DigitalIdentity(tuple(certificates), tuple(names), tuple(skis))

    # mutual recognition (EU MRA pilot, schema http://ec.europa.eu/tools/lotl/mra/schema/v2#)

    def mutual_recognition(self, element: etree._Element) -> MutualRecognition:
        depth = element.get("MRADepth")
        if depth is not None and not depth.strip().isdigit():
            raise self.fail(f"MRADepth {depth!r} is not a number")
        return MutualRecognition(
            depth=None if depth is None else int(depth),
            technical_type=element.get("technicalType"),
            version=element.get("version"),
            pointing_legislation=element.get("pointingContractingPartyLegislation"),
            pointed_legislation=element.get("pointedContractingPartyLegislation"),
            equivalences=tuple(
                self.equivalence(e)
                for e in element.iterfind("m:TrustServiceEquivalenceInformation", _NS)
            ),
        )

    def equivalence(self, element: etree._Element) -> ServiceEquivalence:
        types = "m:TrustServiceTSLTypeEquivalenceList/"
        statuses = element.find("m:TrustServiceTSLStatusEquivalenceList", _NS)
        return ServiceEquivalence(
            legal_identifier=self.text(element, "m:TrustServiceLegalIdentifier"),
            status=self.text(element, "m:TrustServiceEquivalenceStatus"),
            status_starting_time=self.time(element, "m:TrustServiceEquivalenceStatusStartingTime"),
            pointing_types=self.type_refs(
                element, types + "m:TrustServiceTSLTypeListPointingParty/m:TrustServiceTSLType"
            ),
            pointed_types=self.type_refs(
                element, types + "m:TrustServiceTSLTypeListPointedParty/m:TrustServiceTSLType"
            ),
            statuses=() if statuses is None else self.status_equivalences(statuses),
            qualifiers=tuple(
                QualifierEquivalence(
                    pointing_qualifier=self.attribute(q, "m:QualifierPointingParty", "uri"),
                    pointed_qualifier=self.attribute(q, "m:QualifierPointedParty", "uri"),
                )
                for q in element.iterfind(
                    "m:TrustServiceTSLQualificationExtensionEquivalenceList/"
                    "m:QualifierEquivalenceList/m:QualifierEquivalence",
                    _NS,
                )
            ),
            certificate_contexts=_unique_text(
                c.text
                for c in element.iterfind(
                    "m:CertificateContentReferencesEquivalenceList/"
                    "m:CertificateContentReferenceEquivalence/"
                    "m:CertificateContentReferenceEquivalenceContext",
                    _NS,
                )
            ),
        )

    def type_refs(self, element: etree._Element, path: str) -> tuple[ServiceTypeRef, ...]:
        return tuple(
            ServiceTypeRef(
                service_type=self.text(ref, "t:ServiceTypeIdentifier"),
                additional_info=_unique_text(
                    uri.text for uri in ref.iterfind("t:AdditionalServiceInformation/t:URI", _NS)
                ),
            )
            for ref in element.iterfind(path, _NS)
        )

    def status_equivalences(self, element: etree._Element) -> tuple[StatusEquivalence, ...]:
        found: list[StatusEquivalence] = []
        for child in element:
            if child.tag == f"{{{_MRA}}}TrustServiceTSLStatusValidEquivalence":
                valid = True
            elif child.tag == f"{{{_MRA}}}TrustServiceTSLStatusInvalidEquivalence":
                valid = False
            else:
                continue
            found.append(
                StatusEquivalence(
                    valid=valid,
                    pointing_statuses=_unique_text(
                        s.text
                        for s in child.iterfind(
                            "m:TrustServiceTSLStatusListPointingParty/t:ServiceStatus", _NS
                        )
                    ),
                    pointed_statuses=_unique_text(
                        s.text
                        for s in child.iterfind(
                            "m:TrustServiceTSLStatusListPointedParty/t:ServiceStatus", _NS
                        )
                    ),
                )
            )
        return tuple(found)

    # small readers

    def child(self, element: etree._Element, path: str) -> etree._Element:
        found = element.find(path, _NS)
        if found is None:
            raise self.fail(f"{_local(element)} has no {_field(path)}")
        return found

    def optional(self, element: etree._Element, path: str) -> str | None:
        found = element.find(path, _NS)
        if found is None or not (found.text or "").strip():
            return None
        return (found.text or "").strip()

    def text(self, element: etree._Element, path: str) -> str:
        value = self.optional(element, path)
        if value is None:
            raise self.fail(f"{_local(element)} has no {_field(path)}, or it is empty")
        return value

    def attribute(self, element: etree._Element, path: str, name: str) -> str:
        value = self.child(element, path).get(name)
        if not value:
            raise self.fail(f"{_field(path)} has no {name} attribute")
        return value.strip()

    def integer(self, element: etree._Element, path: str) -> int:
        value = self.text(element, path)
        if not value.isdigit():
            raise self.fail(f"{_field(path)} {value!r} is not a number")
        return int(value)

    def time(self, element: etree._Element, path: str) -> datetime:
        value = self.text(element, path)
        try:
            # xsd:dateTime; TS 119 612 gives UTC, and a missing offset is taken as UTC.
            return ensure_utc(datetime.fromisoformat(value))
        except ValueError:
            raise self.fail(f"{_field(path)} {value!r} is not an xsd:dateTime") from None

    def name(self, element: etree._Element) -> str:
        """The English Name of a multilingual name, else the first one."""
        names = [
            (n.get(_XML_LANG), (n.text or "").strip()) for n in element.iterfind("t:Name", _NS)
        ]
        names = [(lang, text) for lang, text in names if text]
        if not names:
            raise self.fail(f"{_local(element)} has no Name")
        for lang, text in names:
            if lang == "en":
                return text
        return names[0][1]


def _load_certificate(text: str | None, *, source: str, where: str) -> x509.Certificate:
    der = _b64(text or "", source=source, where=f"a certificate of {where}")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise EtsiParseError(
            f"{source}: a certificate of {where} is not DER X.509: {exc}", source=source
        ) from exc


def _b64(text: str, *, source: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EtsiParseError(f"{source}: {where} is not base64: {exc}", source=source) from exc


def _certificates(identities: Iterable[DigitalIdentity]) -> tuple[x509.Certificate, ...]:
    return _unique(cert for identity in identities for cert in identity.certificates)


def _unique(certificates: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    seen: set[bytes] = set()
    found: list[x509.Certificate] = []
    for cert in certificates:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            found.append(cert)
    return tuple(found)


def _unique_text(texts: Iterable[str | None]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for text in texts:
        if text and text.strip():
            found.setdefault(text.strip(), None)
    return tuple(found)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _field(path: str) -> str:
    """The last element name of a path such as ``t:NextUpdate/t:dateTime``."""
    return path.rpartition(":")[2]


def _describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()!r} (serial {cert.serial_number:#x})"
