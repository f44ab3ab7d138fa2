"""Online contracts between two organizations, as PAdES documents.

The customer proposes terms as JSON (:class:`ContractTerms`): the parties, the subject, prices
or references, service levels, and the data-usage policy that later governs the data they
exchange. :func:`render_contract` turns the terms into a readable PDF that carries the
canonical terms as the attachment ``terms.json`` and one empty signature field per party.
Each party's authorized signatory signs its field (:func:`sign_contract`, PAdES B-T: a CAdES
detached signature with an RFC 3161 signature time stamp); :func:`archive_contract` adds the
validation data and a document time stamp (PAdES B-LTA). :func:`verify_contract` checks the
contract as a relying party does, :func:`verify_archived_contract` long after the signers'
certificates expired, from what the document itself carries.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import jsonschema
from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from trustbridge import _yamldoc
from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.profiles import Role, SubjectKind, roles_of, subject_kind_of
from trustbridge.pki.signers import Signer

if TYPE_CHECKING:  # pyhanko and fpdf load with the first PDF operation, not with this module
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.signers import PdfSigner
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
    from pyhanko.sign.validation.status import PdfSignatureStatus, TimestampSignatureStatus

__all__ = [
    "ROLES",
    "ContractError",
    "ContractReport",
    "ContractSignatureError",
    "ContractTerms",
    "DataElement",
    "DataUsage",
    "DocumentTimestampReport",
    "Party",
    "Price",
    "ServiceLevel",
    "SignatureReport",
    "TermsError",
    "TimestampClient",
    "archive_contract",
    "contract_terms",
    "render_contract",
    "sign_contract",
    "verify_archived_contract",
    "verify_contract",
]

#: RFC 3161: a DER TimeStampReq in, a DER TimeStampResp out (an HTTP client, or a TSA itself).
TimestampClient = Callable[[bytes], bytes]
PartyRole = Literal["customer", "supplier"]
#: The two parties' roles; each names its signature field too.
ROLES: tuple[PartyRole, PartyRole] = ("customer", "supplier")
_TERMS_LIMIT = 1 << 20
_WHAT = "contract terms"


class ContractError(InputError):
    """A contract document or terms that are malformed or inconsistent."""


class TermsError(_yamldoc.DocumentError, ContractError):
    """Contract terms that are not JSON or violate the terms schema or its rules."""


class ContractSignatureError(ValidationError):
    """A signature refused before signing, or a contract whose signatures do not verify."""


# -- terms ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One side of the contract: its role and the organization identifier its people carry."""

    role: PartyRole
    name: str
    organization_identifier: str
    country: str

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "organization_identifier": self.organization_identifier,
            "country": self.country,
        }


@dataclass(frozen=True)
class Price:
    item: str
    unit_price: Decimal
    currency: str
    quantity: int

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "unit_price": str(self.unit_price),
            "currency": self.currency,
            "quantity": self.quantity,
        }


@dataclass(frozen=True)
class ServiceLevel:
    name: str
    target: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target}


@dataclass(frozen=True)
class DataElement:
    """A category of data one party sends, and the purposes the other may use it for."""

    category: str
    from_role: PartyRole
    purposes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "from": self.from_role, "purposes": list(self.purposes)}


@dataclass(frozen=True)
class DataUsage:
    """The data-usage policy: which data, for which purposes, how long, onward sharing."""

    elements: tuple[DataElement, ...]
    retention_days: int
    onward_sharing: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "elements": [e.to_json() for e in self.elements],
            "retention_days": self.retention_days,
            "onward_sharing": self.onward_sharing,
        }


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    resource = resources.files("trustbridge.exchange") / "schemas" / "terms.schema.json"
    return jsonschema.Draft202012Validator(json.loads(resource.read_text(encoding="utf-8")))


def _time_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ContractTerms:
    """Contract terms that passed the schema and the semantic checks (build with
    :meth:`parse`, :meth:`load` or :meth:`loads`)."""

    id: str
    title: str
    parties: tuple[Party, Party]
    subject: str
    prices: tuple[Price, ...]
    references: tuple[str, ...]
    service_levels: tuple[ServiceLevel, ...]
    data_usage: DataUsage
    valid_from: datetime
    valid_until: datetime
    #: Where the terms came from, for messages.
    source: str = field(default="terms", compare=False)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, source: str, text: str | None = None
    ) -> ContractTerms:
        """Terms from decoded JSON; :class:`TermsError` names ``source`` and the JSON path
        (and the line, when ``text`` is the document ``data`` came from)."""

        def fail(problem: str, path: Sequence[str | int] = ()) -> TermsError:
            json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            line = _yamldoc.line_of(text, path) if text is not None else None
            return TermsError(source, problem, json_path=json_path, line=line)

        violation = jsonschema.exceptions.best_match(_validator().iter_errors(data))
        if violation is not None:
            raise fail(
                f"violates the {_WHAT} schema: {violation.message}", list(violation.absolute_path)
            )

        parties = tuple(
            Party(p["role"], p["name"], p["organization_identifier"], p["country"])
            for p in data["parties"]
        )
        if parties[0].role == parties[1].role:
            raise fail(
                f"both parties have the role {parties[0].role!r}; "
                "one must be the customer, the other the supplier",
                ["parties", 1, "role"],
            )
        if parties[0].organization_identifier == parties[1].organization_identifier:
            raise fail(
                "both parties have the organization identifier "
                f"{parties[0].organization_identifier!r}",
                ["parties", 1, "organization_identifier"],
            )
        ordered = tuple(sorted(parties, key=lambda p: ROLES.index(p.role)))
        times: dict[str, datetime] = {}
        for name in ("valid_from", "valid_until"):
            try:
                times[name] = datetime.fromisoformat(data[name].replace("Z", "+00:00"))
            except ValueError:
                raise fail(f"{data[name]!r} is not a valid date and time", [name]) from None
        if times["valid_until"] <= times["valid_from"]:
            raise fail("valid_until must be later than valid_from", ["valid_until"])
        prices = tuple(
            Price(p["item"], Decimal(p["unit_price"]), p["currency"], p["quantity"])
            for p in data.get("prices", ())
        )
        references = tuple(data.get("references", ()))
        if not prices and not references:
            raise fail("the terms name neither prices nor references; give at least one")
        usage = data["data_usage"]
        elements: list[DataElement] = []
        seen: dict[str, int] = {}
        for index, element in enumerate(usage["elements"]):
            category = element["category"]
            if category in seen:
                raise fail(
                    f"data category {category!r} appears twice (also at index {seen[category]})",
                    ["data_usage", "elements", index, "category"],
                )
            seen[category] = index
            elements.append(DataElement(category, element["from"], tuple(element["purposes"])))
        return cls(
            id=data["id"],
            title=data["title"],
            parties=(ordered[0], ordered[1]),
            subject=data["subject"],
            prices=prices,
            references=references,
            service_levels=tuple(
                ServiceLevel(s["name"], s["target"]) for s in data.get("service_levels", ())
            ),
            data_usage=DataUsage(tuple(elements), usage["retention_days"], usage["onward_sharing"]),
            valid_from=times["valid_from"].astimezone(UTC),
            valid_until=times["valid_until"].astimezone(UTC),
            source=source,
        )

    @classmethod
    def loads(cls, text: str, source: str) -> ContractTerms:
        """Terms from JSON text; errors name ``source``, the JSON path and the line."""

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for key, value in items:
                if key in result:
                    raise _DuplicateKeyError(key)
                result[key] = value
            return result

        def constant(name: str) -> Any:
            raise ValueError(f"{name} is not a JSON number")

        try:
            data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
        except _DuplicateKeyError as exc:
            raise TermsError(source, f"key {exc.key!r} appears twice in one object") from None
        except json.JSONDecodeError as exc:
            raise TermsError(
                source, f"not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
            ) from None
        except ValueError as exc:
            raise TermsError(source, f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise TermsError(source, "the terms must be a JSON object", json_path="$")
        return cls.parse(data, source=source, text=text)

    @classmethod
    def load(cls, path: Path | str) -> ContractTerms:
        """Terms from a JSON file (at most 1 MiB)."""
        path = Path(path)
        text = _yamldoc.read_text(path, str(path), _TERMS_LIMIT, TermsError)
        return cls.loads(text, str(path))

    # -- views ------------------------------------------------------------------------------------

    def party(self, role: str) -> Party:
        """The party with ``role`` (``customer`` or ``supplier``)."""
        for party in self.parties:
            if party.role == role:
                return party
        raise ContractError(f"contract {self.id} has no party with role {role!r}")

    def party_of(self, organization_identifier: str | None) -> Party | None:
        """The party whose organization identifier this is, None for anyone else."""
        for party in self.parties:
            if organization_identifier is not None and (
                party.organization_identifier == organization_identifier
            ):
                return party
        return None

    def element(self, category: str) -> DataElement | None:
        """The data element of ``category``, None if the contract does not cover it."""
        return next((e for e in self.data_usage.elements if e.category == category), None)

    @property
    def purposes(self) -> tuple[str, ...]:
        """Every purpose any data element allows, sorted."""
        return tuple(sorted({p for e in self.data_usage.elements for p in e.purposes}))

    def to_json(self) -> dict[str, Any]:
        """The canonical terms document."""
        document: dict[str, Any] = {
            "type": "tb-contract-terms",
            "version": 1,
            "id": self.id,
            "title": self.title,
            "parties": [p.to_json() for p in self.parties],
            "subject": self.subject,
            "data_usage": self.data_usage.to_json(),
            "valid_from": _time_text(self.valid_from),
            "valid_until": _time_text(self.valid_until),
        }
        if self.prices:
            document["prices"] = [p.to_json() for p in self.prices]
        if self.references:
            document["references"] = list(self.references)
        if self.service_levels:
            document["service_levels"] = [s.to_json() for s in self.service_levels]
        return document

    def canonical_bytes(self) -> bytes:
        """Sorted-key, compact UTF-8 JSON of :meth:`to_json`."""
        return canonical_json(self.to_json())

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_bytes`."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def contract_entity(self) -> dict[str, Any]:
        """Plain data for the access policies' Contract entity."""
        return {
            "id": self.id,
            "parties": [p.organization_identifier for p in self.parties],
            "purposes": list(self.purposes),
            "retention_days": self.data_usage.retention_days,
            "valid_until": _time_text(self.valid_until),
        }


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# -- rendering ------------------------------------------------------------------------------------


def _sections(terms: ContractTerms) -> list[tuple[str, list[str]]]:
    sections: list[tuple[str, list[str]]] = [
        ("Contract", [f"Identifier: {terms.id}", f"Terms digest (SHA-256): {terms.digest}"]),
        (
            "Parties",
            [
                f"{p.role.capitalize()}: {p.name} ({p.organization_identifier}, {p.country})"
                for p in terms.parties
            ],
        ),
        ("Subject", [terms.subject]),
    ]
    if terms.prices:
        sections.append(
            (
                "Prices",
                [
                    f"{p.item}: {p.quantity} x {p.unit_price} {p.currency} = "
                    f"{p.unit_price * p.quantity} {p.currency}"
                    for p in terms.prices
                ],
            )
        )
    if terms.references:
        sections.append(("References", list(terms.references)))
    if terms.service_levels:
        sections.append(("Service levels", [f"{s.name}: {s.target}" for s in terms.service_levels]))
    usage = terms.data_usage
    lines = [
        f"{e.category}, provided by the {e.from_role}, for: {', '.join(e.purposes)}"
        for e in usage.elements
    ]
    lines.append(f"Retention: {usage.retention_days} days after receipt.")
    lines.append(
        "Onward sharing to third parties: "
        + ("permitted." if usage.onward_sharing else "not permitted.")
    )
    sections.append(("Data usage", lines))
    sections.append(
        (
            "Validity",
            [f"From {_time_text(terms.valid_from)} until {_time_text(terms.valid_until)}."],
        )
    )
    return sections


def render_contract(terms: ContractTerms, *, created: datetime | None = None) -> bytes:
    """A readable PDF of ``terms`` with the canonical terms attached as ``terms.json`` and an
    empty signature field per party (``customer``, ``supplier``).

    ``created``: the document's creation date (default: now).
    """
    from trustbridge.exchange import _pdf

    return _pdf.render_pdf(
        title=terms.title,
        sections=_sections(terms),
        attachment=terms.canonical_bytes(),
        attachment_description=f"Machine-readable terms of contract {terms.id}",
        fields=[_pdf.FieldBox(p.role, f"{p.role.capitalize()}: {p.name}") for p in terms.parties],
        created=ensure_utc(created) if created is not None else datetime.now(UTC),
    )


# -- reading a contract ---------------------------------------------------------------------------


def _reader(pdf: bytes, source: str) -> PdfFileReader:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        return PdfFileReader(BytesIO(pdf))
    except (PdfError, ValueError, KeyError) as exc:
        raise ContractError(f"{source}: not a readable PDF document: {exc}") from None


def _terms_in(reader: PdfFileReader, source: str, revision: int | None = None) -> ContractTerms:
    from trustbridge.exchange import _pdf

    handler = reader if revision is None else reader.get_historical_resolver(revision)
    data = _pdf.embedded_file(handler, _pdf.TERMS_FILE_NAME)
    where = f"{source}: {_pdf.TERMS_FILE_NAME}"
    if data is None:
        raise ContractError(
            f"{source}: the document carries no (or more than one) {_pdf.TERMS_FILE_NAME} "
            "attachment, so it is not a trustbridge contract",
            hint="render contracts with render_contract",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TermsError(where, "not UTF-8 text") from None
    return ContractTerms.loads(text, where)


def contract_terms(pdf: bytes, *, source: str = "contract.pdf") -> ContractTerms:
    """The terms a contract PDF carries (unverified: use :func:`verify_contract`)."""
    return _terms_in(_reader(pdf, source), source)


# -- signing --------------------------------------------------------------------------------------


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _check_signatory(certificate: x509.Certificate, terms: ContractTerms, at: datetime) -> Party:
    """The party ``certificate`` may sign for, or :class:`ContractSignatureError`."""
    subject = _subject(certificate)
    kind = subject_kind_of(certificate)
    if kind is not SubjectKind.PERSON:
        raise ContractSignatureError(
            f"{subject!r} is not a person identity ({kind or 'unknown kind'}); "
            f"contract {terms.id} is signed by people",
            hint="sign with the person certificate of an authorized signatory",
        )
    if Role.AUTHORIZED_SIGNATORY not in roles_of(certificate):
        raise ContractSignatureError(
            f"{subject!r} is not an authorized signatory: the certificate carries no "
            f"{Role.AUTHORIZED_SIGNATORY.value} role",
            hint="ask the CA for a person certificate with the authorized-signatory role",
        )
    identifier = organization_identifier_of(certificate)
    party = terms.party_of(identifier)
    if party is None:
        parties = ", ".join(p.organization_identifier for p in terms.parties)
        raise ContractSignatureError(
            f"{subject!r} signs for organization {identifier or '(none named)'}, which is "
            f"not a party to contract {terms.id} (parties: {parties})",
        )
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise ContractSignatureError(
            f"the certificate of {subject!r} is not valid at {_time_text(at)} "
            f"(valid {_time_text(certificate.not_valid_before_utc)} to "
            f"{_time_text(certificate.not_valid_after_utc)})"
        )
    return party


def _digest_name(key_type: KeyType) -> str:
    algorithm = hash_for(key_type)
    return algorithm.name if algorithm is not None else "sha512"


def _check_existing(reader: PdfFileReader, terms: ContractTerms, source: str) -> None:
    """Refuse a document whose signatures no longer hold (integrity, not trust)."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
    from pyhanko.sign.validation import generic_cms
    from pyhanko.sign.validation.errors import SignatureValidationError

    for embedded in reader.embedded_signatures:
        name = embedded.field_name
        try:
            embedded.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)
            intact, valid = generic_cms.validate_sig_integrity(
                embedded.signer_info,
                embedded.signer_cert,
                expected_content_type=embedded.signed_data["encap_content_info"][
                    "content_type"
                ].native,
                actual_digest=embedded.compute_digest(),
            )
        except (SignatureValidationError, PdfError, ValueError) as exc:
            raise ContractSignatureError(
                f"{source}: signature {name!r} cannot be checked: {exc}",
                hint="start again from the last copy whose signatures verify",
            ) from None
        status = embedded.summarise_integrity_info()
        level = _modification_level(status["diff_result"], status["coverage"])
        if not (intact and valid):
            raise ContractSignatureError(
                f"{source}: signature {name!r} does not verify: the signed content was changed "
                "after it was signed",
                hint="start again from the last copy whose signatures verify",
            )
        if level is None or level > ModificationLevel.FORM_FILLING:
            raise ContractSignatureError(
                f"{source}: the document was changed after signature {name!r} beyond filling "
                f"in signatures ({_level_name(level)})",
                hint="start again from the last copy whose signatures verify",
            )
        if _terms_in(reader, source, embedded.signed_revision).digest != terms.digest:
            raise ContractSignatureError(
                f"{source}: the terms were changed after signature {name!r}"
            )


def sign_contract(
    pdf: bytes,
    *,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    timestamp: TimestampClient,
    at: datetime | None = None,
    source: str = "contract.pdf",
) -> bytes:
    """Sign the contract as the party of ``chain[0]`` (PAdES B-T, subfilter
    ETSI.CAdES.detached, with a signature time stamp from ``timestamp``).

    Refused with :class:`ContractSignatureError` unless ``chain[0]`` is a person identity with
    the authorized-signatory role of one of the parties, that party's field is still empty,
    and the signatures already present still verify.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields as pdf_fields
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

    from trustbridge.exchange import _pdf

    if not chain:
        raise ContractSignatureError("a signature needs the signer's certificate chain")
    at = ensure_utc(at) if at is not None else datetime.now(UTC)
    reader = _reader(pdf, source)
    terms = _terms_in(reader, source)
    party = _check_signatory(chain[0], terms, at)
    field_name = party.role
    fields = {name: value for name, value, _ in pdf_fields.enumerate_sig_fields(reader)}
    if field_name not in fields:
        raise ContractError(f"{source}: the document has no signature field {field_name!r}")
    if fields[field_name] is not None:
        raise ContractSignatureError(
            f"{source}: the {field_name} has signed already (field {field_name!r} is filled)"
        )
    if reader.embedded_timestamp_signatures:
        raise ContractSignatureError(
            f"{source}: the contract was archived already; no further signatures can be added"
        )
    _check_existing(reader, terms, source)

    digest = _digest_name(signer.key_type)
    pdf_signer = PdfSigner(
        PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=digest,
            subfilter=pdf_fields.SigSeedSubFilter.PADES,
            name=_subject(chain[0]),
            reason=f"{party.role} of contract {terms.id} (terms {terms.digest})",
        ),
        signer=_pdf.PdfSignerAdapter(signer, chain, digest_algorithm=digest),
        timestamper=_pdf.CallbackTimeStamper(timestamp),
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    try:
        output = _pdf.run(_sign(pdf_signer, writer, at))
    except (SigningError, OSError) as exc:
        raise ContractSignatureError(f"{source}: signing failed: {exc}") from None
    return output.getvalue()


async def _sign(pdf_signer: PdfSigner, writer: IncrementalPdfFileWriter, at: datetime) -> BytesIO:
    """pyhanko's ``async_sign_pdf``, with the claimed signing time taken from ``at``."""
    from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

    session = pdf_signer.init_signing_session(writer, existing_fields_only=True)
    session.system_time = at
    validation_info = await session.perform_presign_validation(writer)
    reserved = await session.estimate_signature_container_size(validation_info, tight=False)
    tbs = session.prepare_tbs_document(validation_info=validation_info, bytes_reserved=reserved)
    prepared, output = tbs.digest_tbs_document(in_place=False, chunk_size=4096, output=None)
    signed = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=at),
    )
    await signed.post_signature_processing(output, chunk_size=4096)
    output.seek(0)
    assert isinstance(output, BytesIO)
    return output


# -- archiving ------------------------------------------------------------------------------------


def archive_contract(
    pdf: bytes,
    *,
    timestamp: TimestampClient,
    certificates: Sequence[x509.Certificate],
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    source: str = "contract.pdf",
) -> bytes:
    """Add the validation data (certificates, CRLs, OCSP responses) to the document security
    store and a document time stamp over everything: PAdES B-LTA.

    Refuses a document whose signatures no longer verify.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.signers import PdfTimeStamper
    from pyhanko.sign.validation import DocumentSecurityStore

    from trustbridge.exchange import _pdf

    reader = _reader(pdf, source)
    terms = _terms_in(reader, source)
    if not reader.embedded_regular_signatures:
        raise ContractSignatureError(
            f"{source}: the contract is not signed yet; nothing to archive"
        )
    _check_existing(reader, terms, source)
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    try:
        DocumentSecurityStore.supply_dss_in_writer(
            writer,
            sig_contents=None,
            certs=[_pdf.asn1_certificate(c) for c in certificates],
            crls=[asn1_crl.CertificateList.load(c) for c in crls],
            ocsps=[asn1_ocsp.OCSPResponse.load(o) for o in ocsp_responses],
        )
        output = BytesIO()
        writer.write(output)  # type: ignore[no-untyped-call]
        stamped = IncrementalPdfFileWriter(output)
        result = _pdf.run(
            PdfTimeStamper(
                _pdf.CallbackTimeStamper(timestamp), field_name=_archive_field(reader)
            ).async_timestamp_pdf(stamped, "sha256", in_place=True)
        )
    except (SigningError, OSError, ValueError) as exc:
        raise ContractSignatureError(f"{source}: archiving failed: {exc}") from None
    return bytes(result.getvalue())


def _archive_field(reader: PdfFileReader) -> str:
    return f"archive-{len(reader.embedded_timestamp_signatures) + 1}"


# -- verification ---------------------------------------------------------------------------------


def _level_name(level: ModificationLevel | None) -> str:
    return level.name.lower().replace("_", "-") if level is not None else "unknown"


def _modification_level(diff_result: Any, coverage: Any) -> ModificationLevel | None:
    from pyhanko.sign.validation.status import PdfSignatureStatus

    status = PdfSignatureStatus.__new__(PdfSignatureStatus)
    object.__setattr__(status, "diff_result", diff_result)
    object.__setattr__(status, "coverage", coverage)
    return status.modification_level


@dataclass(frozen=True)
class SignatureReport:
    """What verification found about one party's signature."""

    field: str
    signer: str
    organization_identifier: str | None
    #: The party the signer's organization is, None for an outsider.
    party_role: str | None
    authorized: bool
    #: pyhanko's overall verdict (integrity, trust, time stamp, modifications).
    bottom_line: bool
    intact: bool
    valid: bool
    trusted: bool
    signing_time: datetime | None
    timestamp_valid: bool
    modification_level: str
    coverage: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "signer": self.signer,
            "organization_identifier": self.organization_identifier,
            "party_role": self.party_role,
            "authorized": self.authorized,
            "bottom_line": self.bottom_line,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "signing_time": _time_text(self.signing_time) if self.signing_time else None,
            "timestamp_valid": self.timestamp_valid,
            "modification_level": self.modification_level,
            "coverage": self.coverage,
            "ok": self.ok,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class DocumentTimestampReport:
    field: str
    time: datetime | None
    valid: bool
    modification_level: str

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "time": _time_text(self.time) if self.time else None,
            "valid": self.valid,
            "modification_level": self.modification_level,
        }


@dataclass(frozen=True)
class ContractReport:
    """The verdict on a contract document."""

    terms: ContractTerms
    signatures: tuple[SignatureReport, ...]
    document_timestamps: tuple[DocumentTimestampReport, ...]
    #: Validation time.
    at: datetime
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Every signature present holds and the document has no other problem."""
        return not self.problems and all(s.ok for s in self.signatures)

    @property
    def complete(self) -> bool:
        """Both parties' authorized signatories signed, and every signature holds."""
        signed = {s.party_role for s in self.signatures if s.ok and s.field == s.party_role}
        return self.valid and signed == set(ROLES)

    @property
    def archived(self) -> bool:
        """PAdES B-LTA: a valid document time stamp after the last signature (which covers the
        validation data added before it)."""
        return self.valid and any(t.valid for t in self.document_timestamps)

    def signature(self, role: str) -> SignatureReport | None:
        return next((s for s in self.signatures if s.field == role), None)

    def all_problems(self) -> list[str]:
        return [*self.problems, *(f"{s.field}: {p}" for s in self.signatures for p in s.problems)]

    def require(self, *, complete: bool = True, archived: bool = False) -> None:
        """Raise :class:`ContractSignatureError` unless the contract is valid (and complete,
        and archived, as asked)."""
        problems = self.all_problems()
        if complete and not self.complete and not problems:
            missing = [r for r in ROLES if self.signature(r) is None]
            problems.append(f"not signed by: {', '.join(missing) or 'an authorized party'}")
        if archived and not self.archived:
            problems.append("not archived (no valid document time stamp)")
        if problems:
            raise ContractSignatureError(
                f"contract {self.terms.id} does not verify: " + "; ".join(problems)
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "contract": self.terms.id,
            "terms_digest": self.terms.digest,
            "parties": [p.to_json() for p in self.terms.parties],
            "validated_at": _time_text(self.at),
            "valid": self.valid,
            "complete": self.complete,
            "archived": self.archived,
            "signatures": [s.to_json() for s in self.signatures],
            "document_timestamps": [t.to_json() for t in self.document_timestamps],
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class _Material:
    """What a validation may use: anchors, certificates, revocation data (ours and the DSS's)."""

    roots: list[Any]
    certs: list[Any]
    crls: list[Any]
    ocsps: list[Any]


def _material(
    reader: PdfFileReader,
    trust_roots: Sequence[x509.Certificate],
    other_certificates: Sequence[x509.Certificate],
    crls: Sequence[bytes],
    ocsp_responses: Sequence[bytes],
) -> _Material:
    from pyhanko.sign.validation import DocumentSecurityStore

    from trustbridge.exchange import _pdf

    certs = [_pdf.asn1_certificate(c) for c in other_certificates]
    crl_list = [asn1_crl.CertificateList.load(c) for c in crls]
    ocsp_list = [asn1_ocsp.OCSPResponse.load(o) for o in ocsp_responses]
    dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
    if dss is not None:
        certs += list(dss.load_certs())
        crl_list += [asn1_crl.CertificateList.load(r.get_object().data) for r in dss.crls]
        ocsp_list += [asn1_ocsp.OCSPResponse.load(r.get_object().data) for r in dss.ocsps]
    return _Material([_pdf.asn1_certificate(c) for c in trust_roots], certs, crl_list, ocsp_list)


def _prepare(
    pdf: bytes,
    trust_roots: Sequence[x509.Certificate],
    other_certificates: Sequence[x509.Certificate],
    at: datetime | None,
    crls: Sequence[bytes],
    ocsp_responses: Sequence[bytes],
    source: str,
) -> tuple[PdfFileReader, ContractTerms, _Material, datetime]:
    """What verifying a contract starts from: the document, its terms, the validation
    material and the validation time (default: now)."""
    if not trust_roots:
        raise ContractSignatureError("verifying a contract needs at least one trust root")
    at = ensure_utc(at) if at is not None else datetime.now(UTC)
    reader = _reader(pdf, source)
    terms = _terms_in(reader, source)
    material = _material(reader, trust_roots, other_certificates, crls, ocsp_responses)
    return reader, terms, material, at


def _context(material: _Material, at: datetime, allow_fetching: bool) -> ValidationContext:
    return ValidationContext(
        trust_roots=material.roots,
        other_certs=material.certs,
        crls=material.crls,
        ocsps=material.ocsps,
        moment=at,
        allow_fetching=allow_fetching,
        # Fail closed: every certificate of a path needs current revocation information.
        revocation_mode="require",
    )


class _Signed(TypedDict):
    """Who signed a field and whether the terms let them: a :class:`SignatureReport`'s
    fields that need no cryptographic check."""

    field: str
    signer: str
    organization_identifier: str | None
    party_role: str | None
    authorized: bool


def _signer_facts(
    embedded: EmbeddedPdfSignature, terms: ContractTerms
) -> tuple[_Signed, list[str]]:
    """The signer's facts, and the problems that make the signer unauthorized."""
    certificate = x509.load_der_x509_certificate(embedded.signer_cert.dump())
    identifier = organization_identifier_of(certificate)
    party = terms.party_of(identifier)
    problems: list[str] = []
    if subject_kind_of(certificate) is not SubjectKind.PERSON:
        problems.append("the signer is not a person identity")
    if Role.AUTHORIZED_SIGNATORY not in roles_of(certificate):
        problems.append("the signer is not an authorized signatory")
    if party is None:
        problems.append(f"the signer's organization {identifier} is not a party")
    elif party.role != embedded.field_name:
        problems.append(
            f"the signer is the {party.role}'s signatory, in the {embedded.field_name} field"
        )
    signed: _Signed = {
        "field": embedded.field_name,
        "signer": _subject(certificate),
        "organization_identifier": identifier,
        "party_role": party.role if party else None,
        "authorized": not problems,
    }
    return signed, problems


def _tst_time(status: TimestampSignatureStatus | None) -> datetime | None:
    return status.timestamp if status is not None else None


async def _verify(
    reader: PdfFileReader,
    terms: ContractTerms,
    material: _Material,
    at: datetime,
    allow_fetching: bool,
    source: str,
) -> ContractReport:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.pdf_embedded import (
        async_validate_pdf_signature,
        async_validate_pdf_timestamp,
    )

    problems: list[str] = []
    reports: list[SignatureReport] = []
    regular = reader.embedded_regular_signatures
    for embedded in regular:
        signed, found = _signer_facts(embedded, terms)
        context = _context(material, at, allow_fetching)
        try:
            status = await async_validate_pdf_signature(
                embedded, signer_validation_context=context, diff_policy=DEFAULT_DIFF_POLICY
            )
        except (SignatureValidationError, PdfError, ValueError) as exc:
            reports.append(
                SignatureReport(
                    **signed,
                    bottom_line=False,
                    intact=False,
                    valid=False,
                    trusted=False,
                    signing_time=None,
                    timestamp_valid=False,
                    modification_level="unknown",
                    coverage="unknown",
                    problems=(*found, f"cannot be validated: {exc}"),
                )
            )
            continue
        found += _status_problems(status)
        if embedded.field_name not in ROLES:
            found.append(f"unexpected signature field {embedded.field_name!r}")
        try:
            signed_terms = _terms_in(reader, source, embedded.signed_revision)
        except ContractError as exc:
            found.append(f"the signed revision carries no valid terms: {exc.message}")
        else:
            if signed_terms.digest != terms.digest:
                found.append("the terms were changed after this signature")
        tst = status.timestamp_validity
        reports.append(
            SignatureReport(
                **signed,
                bottom_line=status.bottom_line,
                intact=status.intact,
                valid=status.valid,
                trusted=status.trusted,
                signing_time=_tst_time(tst),
                timestamp_valid=bool(tst and tst.intact and tst.valid and tst.trusted),
                modification_level=_level_name(status.modification_level),
                coverage=status.coverage.name.lower().replace("_", "-")
                if status.coverage
                else "unknown",
                problems=tuple(found),
            )
        )
    if len({r.field for r in reports}) != len(reports):
        problems.append("a signature field is signed twice")
    # Everything after the last signature: validation data and document time stamps only.
    if reports and reports[-1].modification_level not in (
        _level_name(ModificationLevel.NONE),
        _level_name(ModificationLevel.LTA_UPDATES),
    ):
        problems.append(
            "the document was changed after the last signature beyond validation data and "
            f"document time stamps ({reports[-1].modification_level})"
        )
    stamps: list[DocumentTimestampReport] = []
    last_signed = max((e.signed_revision for e in regular), default=-1)
    for embedded in reader.embedded_timestamp_signatures:
        context = _context(material, at, allow_fetching)
        try:
            ts_status = await async_validate_pdf_timestamp(
                embedded, validation_context=context, diff_policy=DEFAULT_DIFF_POLICY
            )
            level_value = ts_status.modification_level
            valid = (
                ts_status.intact
                and ts_status.valid
                and ts_status.trusted
                and level_value is not None
                and level_value <= ModificationLevel.LTA_UPDATES
                and embedded.signed_revision > last_signed
            )
            level = _level_name(level_value)
            time = ts_status.timestamp
        except (SignatureValidationError, PdfError, ValueError):
            valid, level, time = False, "unknown", None
        stamps.append(DocumentTimestampReport(embedded.field_name, time, valid, level))
        if not valid:
            problems.append(f"document time stamp {embedded.field_name!r} does not verify")
    return ContractReport(terms, tuple(reports), tuple(stamps), at, tuple(problems))


def _status_problems(status: PdfSignatureStatus) -> list[str]:
    from pyhanko.sign.diff_analysis import ModificationLevel

    problems: list[str] = []
    if not status.intact:
        problems.append("the signed content was changed (digest mismatch)")
    elif not status.valid:
        problems.append("the signature value does not verify")
    if not status.trusted:
        reason = status.trust_problem_indic
        problems.append(
            "the signer's certificate does not validate to a trust root"
            + (f" ({reason})" if reason is not None else "")
        )
    if status.revoked:
        problems.append("the signer's certificate is revoked")
    tst = status.timestamp_validity
    if tst is None:
        problems.append("the signature has no signature time stamp")
    elif not (tst.intact and tst.valid and tst.trusted):
        problems.append("the signature time stamp does not verify")
    level = status.modification_level
    if level is None or level > ModificationLevel.FORM_FILLING or not status.docmdp_ok:
        problems.append(
            f"the document was modified after signing beyond what is allowed ({_level_name(level)})"
        )
    if not status.bottom_line and not problems:
        problems.append("pyhanko's validation failed")
    return problems


def verify_contract(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    other_certificates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    allow_fetching: bool = False,
    source: str = "contract.pdf",
) -> ContractReport:
    """Verify a contract document at ``at`` (default: now) as a relying party with
    ``trust_roots``: the embedded terms, every signature (pyhanko's verdict, signatory role,
    party, signature time stamp, later modifications) and the document time stamps.

    Revocation information must be at hand for every certificate (``crls``,
    ``ocsp_responses``, or the document's security store), unless ``allow_fetching``.
    Returns the report; :meth:`ContractReport.require` turns it into an exception.
    """
    from trustbridge.exchange import _pdf

    reader, terms, material, at = _prepare(
        pdf, trust_roots, other_certificates, at, crls, ocsp_responses, source
    )
    return _pdf.run(_verify(reader, terms, material, at, allow_fetching, source))


# -- long-term validation -------------------------------------------------------------------------


def verify_archived_contract(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    other_certificates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    source: str = "contract.pdf",
) -> ContractReport:
    """Verify an archived (B-LTA) contract offline at ``at``, which may lie after the
    signers' certificates expired: AdES long-term validation (ETSI EN 319 102-1 5.6.3),
    fetching nothing.

    The document's security store and time stamps prove the signatures as of their time;
    only the newest document time stamp is checked as of ``at``, so its authority's chain
    needs revocation information current at ``at`` (``crls``, ``ocsp_responses``).
    """
    from trustbridge.exchange import _pdf

    reader, terms, material, at = _prepare(
        pdf, trust_roots, other_certificates, at, crls, ocsp_responses, source
    )
    return _pdf.run(_verify_lta(reader, terms, material, at, source))


async def _verify_lta(
    reader: PdfFileReader, terms: ContractTerms, material: _Material, at: datetime, source: str
) -> ContractReport:
    from pyhanko.sign.ades.report import AdESPassed
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import ades as pdf_ades
    from pyhanko.sign.validation.policy_decl import (
        LocalKnowledge,
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko.sign.validation.status import PdfSignatureStatus

    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=material.roots),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("require")),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(
                known_certs=list(material.certs),
                known_crls=[CRLContainer(c) for c in material.crls],
                known_ocsps=[OCSPContainer(o) for o in material.ocsps],
            ),
        )
    )
    timing = ValidationTimingInfo(
        validation_time=at, best_signature_time=at, point_in_time_validation=False
    )
    reports: list[SignatureReport] = []
    chain_ok = True
    for embedded in reader.embedded_regular_signatures:
        signed, found = _signer_facts(embedded, terms)
        result = await pdf_ades.ades_lta_validation(embedded, spec, timing_info=timing)
        if result.oldest_evidence_record_timestamp is None:
            chain_ok = False
            found.append("no valid document time stamp proves the signature's existence")
        passed = isinstance(result.ades_subindic, AdESPassed)
        if not passed:
            found.append(
                f"long-term validation failed: {result.ades_subindic}"
                + (f" ({result.failure_msg})" if result.failure_msg else "")
            )
        status = result.api_status
        level = status.modification_level if isinstance(status, PdfSignatureStatus) else None
        if level is None or level > ModificationLevel.FORM_FILLING:
            found.append(f"the document was modified after signing ({_level_name(level)})")
        ts = result.signature_timestamp_status
        reports.append(
            SignatureReport(
                **signed,
                bottom_line=passed,
                intact=bool(status and status.intact),
                valid=bool(status and status.valid),
                trusted=passed,
                signing_time=result.best_signature_time,
                timestamp_valid=bool(ts is not None and isinstance(ts.ades_subindic, AdESPassed)),
                modification_level=_level_name(level),
                coverage="unknown",
                problems=tuple(found),
            )
        )
    # The document time stamps form the evidence record: pyhanko validated the chain as a
    # whole (the newest as of ``at``, each older one as of the next one's time).
    problems: list[str] = []
    if not reader.embedded_timestamp_signatures:
        problems.append("the contract is not archived: it has no document time stamp")
    stamps = tuple(
        DocumentTimestampReport(
            e.field_name, _token_time(e.signed_data), chain_ok, _level_name(None)
        )
        for e in reader.embedded_timestamp_signatures
    )
    if stamps and not chain_ok:
        problems.append("the chain of document time stamps does not validate")
    return ContractReport(terms, tuple(reports), stamps, at, tuple(problems))


def _token_time(signed_data: cms.SignedData) -> datetime | None:
    try:
        info = signed_data["encap_content_info"]["content"].parsed
        value = info["gen_time"].native
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return value if isinstance(value, datetime) else None
