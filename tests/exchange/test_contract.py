"""Contracts as PAdES documents: terms, rendering, signing by both parties, archiving, verifying.

Independent checks: Debian's ``pdfsig`` (poppler with NSS) validates both signatures, and
``openssl ts -verify`` every time-stamp token (the signature time stamps and the document one).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from tests.exchange.contract_world import (
    AFTER_EXPIRY,
    HAYABUSA_ID,
    MUSTER_ID,
    ContractWorld,
    Person,
    build_contract_world,
)
from tests.homes import NOW
from trustbridge.demo.exchange import scenario_terms
from trustbridge.exchange.contract import (
    ContractError,
    ContractReport,
    ContractSignatureError,
    ContractTerms,
    TermsError,
    archive_contract,
    contract_terms,
    render_contract,
    sign_contract,
    verify_archived_contract,
    verify_contract,
)

#: The reference scenario's terms, as the demonstrator proposes them (fixed validity here).
TERMS: dict[str, Any] = scenario_terms()


def terms_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(TERMS)
    data.update(changes)
    return data


# -- terms ----------------------------------------------------------------------------------------


def test_terms_parse_and_views() -> None:
    terms = ContractTerms.parse(TERMS, source="terms.json")
    assert terms.id == "MM-HSC-2026-0001"
    assert terms.party("customer").organization_identifier == MUSTER_ID
    assert terms.party_of(HAYABUSA_ID) is not None
    assert terms.party_of(HAYABUSA_ID).role == "supplier"  # type: ignore[union-attr]
    assert terms.party_of("VATDE-555444333") is None
    element = terms.element("test-report")
    assert element is not None and element.from_role == "supplier"
    assert terms.element("drawings") is None
    assert terms.contract_entity() == {
        "id": "MM-HSC-2026-0001",
        "parties": [MUSTER_ID, HAYABUSA_ID],
        "purposes": ["incoming-inspection", "quality-assurance", "vulnerability-management"],
        "retention_days": 365,
        "valid_until": "2028-11-30T23:59:59Z",
    }
    # the canonical document round-trips and is what the digest covers
    assert terms.to_json() == TERMS
    again = ContractTerms.loads(terms.canonical_bytes().decode(), "canonical")
    assert again == terms and again.digest == terms.digest
    assert json.loads(terms.canonical_bytes()) == TERMS
    assert terms.canonical_bytes().startswith(b'{"data_usage":')


def test_terms_order_of_parties_and_zones_is_canonical() -> None:
    data = terms_with(
        parties=list(reversed(TERMS["parties"])), valid_from="2026-12-01T09:00:00+09:00"
    )
    terms = ContractTerms.parse(data, source="t")
    assert [p.role for p in terms.parties] == ["customer", "supplier"]
    assert terms.to_json()["valid_from"] == "2026-12-01T00:00:00Z"
    assert terms.digest == ContractTerms.parse(TERMS, source="t").digest


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"colour": "blue"}, r"\$: violates .*'colour' was unexpected"),
        ({"version": 2}, r"\$\.version: violates"),
        (
            {"parties": [TERMS["parties"][0]]},
            r"\$\.parties: violates the contract terms schema",
        ),
        (
            {"parties": [TERMS["parties"][0], {**TERMS["parties"][1], "role": "customer"}]},
            r"\$\.parties\[1\]\.role: both parties have the role 'customer'",
        ),
        (
            {
                "parties": [
                    TERMS["parties"][0],
                    {**TERMS["parties"][1], "organization_identifier": MUSTER_ID},
                ]
            },
            r"\$\.parties\[1\]\.organization_identifier: both parties have",
        ),
        (
            {"parties": [TERMS["parties"][0], {**TERMS["parties"][1], "role": "broker"}]},
            r"\$\.parties\[1\]\.role: violates",
        ),
        (
            {"prices": [{**TERMS["prices"][0], "unit_price": 48.5}]},
            r"\$\.prices\[0\]\.unit_price: violates",
        ),
        (
            {"prices": [{**TERMS["prices"][0], "unit_price": "48,50"}]},
            r"\$\.prices\[0\]\.unit_price: violates",
        ),
        ({"prices": [], "references": []}, r"\$: the terms name neither prices nor references"),
        ({"valid_until": "2026-11-30T00:00:00Z"}, r"\$\.valid_until: valid_until must be later"),
        ({"valid_from": "2026-12-01T00:00:00"}, r"\$\.valid_from: violates"),
        ({"valid_from": "2026-13-01T00:00:00Z"}, r"\$\.valid_from: '2026-13-01.*not a valid"),
        (
            {
                "data_usage": {
                    **TERMS["data_usage"],
                    "elements": [
                        {"category": "Test-Report", "from": "supplier", "purposes": ["qa"]}
                    ],
                }
            },
            r"\$\.data_usage\.elements\[0\]\.category: violates",
        ),
        (
            {
                "data_usage": {
                    **TERMS["data_usage"],
                    "elements": [TERMS["data_usage"]["elements"][0]] * 2,
                }
            },
            r"\$\.data_usage\.elements\[1\]\.category: data category 'test-report' appears twice",
        ),
        (
            {"data_usage": {**TERMS["data_usage"], "sell_to": "anyone"}},
            r"\$\.data_usage: violates",
        ),
    ],
)
def test_terms_errors_name_source_and_path(change: dict[str, Any], match: str) -> None:
    with pytest.raises(TermsError, match=r"^offer\.json: " + match):
        ContractTerms.parse(terms_with(**change), source="offer.json")


def test_terms_errors_in_text_carry_lines(tmp_path: Path) -> None:
    text = json.dumps(terms_with(valid_until="2020-01-01T00:00:00Z"), indent=2)
    path = tmp_path / "offer.json"
    path.write_text(text)
    with pytest.raises(TermsError) as caught:
        ContractTerms.load(path)
    error = caught.value
    assert error.source == str(path) and error.json_path == "$.valid_until"
    assert error.line == text.splitlines().index('  "valid_until": "2020-01-01T00:00:00Z"') + 1
    assert f"{path}: $.valid_until (line {error.line}): valid_until must be later" in str(error)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"type": "tb-contract-terms",\n "id": }', r"^x\.json: line 2, column 8: not valid JSON"),
        ('{"id": "a", "id": "b"}', r"key 'id' appears twice"),
        ('{"retention_days": NaN}', r"not valid JSON"),
        ("[]", r"must be a JSON object"),
    ],
)
def test_terms_text_errors(text: str, match: str) -> None:
    with pytest.raises(TermsError, match=match):
        ContractTerms.loads(text, "x.json")


def test_terms_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TermsError, match=r"missing\.json: cannot read the file"):
        ContractTerms.load(tmp_path / "missing.json")


# -- the contract, signed by both parties ---------------------------------------------------------


@dataclass
class Flow:
    world: ContractWorld
    terms: ContractTerms
    rendered: bytes
    customer_signed: bytes
    both_signed: bytes
    archived: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractWorld]:
    world = build_contract_world(tmp_path_factory.mktemp("contract"))
    yield world
    world.linked.close()


def sign_as(world: ContractWorld, pdf: bytes, person: Person) -> bytes:
    tsp_home = world.linked.de if person is not world.supplier else world.linked.jp
    return sign_contract(
        pdf,
        signer=person.holder.signer,
        chain=person.chain,
        timestamp=world.tsa(tsp_home),
        at=NOW,
    )


@pytest.fixture(scope="module")
def flow(world: ContractWorld) -> Flow:
    terms = ContractTerms.parse(TERMS, source="offer.json")
    rendered = render_contract(terms, created=NOW)
    customer_signed = sign_as(world, rendered, world.customer)
    both_signed = sign_as(world, customer_signed, world.supplier)
    archived = archive_contract(
        both_signed,
        timestamp=world.tsa(world.linked.de),
        certificates=world.certificates(),
        crls=world.crls_now,
    )
    return Flow(world, terms, rendered, customer_signed, both_signed, archived)


def verify(world: ContractWorld, pdf: bytes, **kwargs: Any) -> ContractReport:
    options: dict[str, Any] = {"trust_roots": world.roots, "at": NOW, "crls": world.crls_now}
    options.update(kwargs)
    return verify_contract(pdf, **options)


def test_render_carries_terms_and_empty_fields(flow: Flow) -> None:
    assert flow.rendered.startswith(b"%PDF-2.0")
    assert contract_terms(flow.rendered) == flow.terms
    reader = PdfFileReader(BytesIO(flow.rendered))
    fields = {name: value for name, value, _ in enumerate_sig_fields(reader)}
    assert fields == {"customer": None, "supplier": None}
    spec = reader.root["/AF"][0]
    assert spec["/AFRelationship"] == "/Data" and spec["/UF"] == "terms.json"
    assert spec["/EF"]["/F"].get_object()["/Subtype"] == "/application/json"
    # one revision: the first signature covers everything the customer saw
    assert reader.xrefs.total_revisions == 1


def test_signed_by_both_and_archived(flow: Flow) -> None:
    report = verify(flow.world, flow.archived)
    assert report.valid and report.complete and report.archived, report.all_problems()
    customer, supplier = report.signatures
    assert (customer.field, supplier.field) == ("customer", "supplier")
    assert customer.organization_identifier == MUSTER_ID and customer.party_role == "customer"
    assert supplier.organization_identifier == HAYABUSA_ID and supplier.party_role == "supplier"
    for signature in report.signatures:
        assert signature.bottom_line and signature.intact and signature.valid
        assert signature.trusted and signature.authorized and signature.timestamp_valid
        assert signature.signing_time == NOW
    # the supplier's signature filled in a form field after the customer's; after the last
    # signature only validation data and the document time stamp were added
    assert customer.modification_level == "form-filling"
    assert supplier.modification_level == "lta-updates"
    (stamp,) = report.document_timestamps
    assert stamp.valid and stamp.time == NOW and stamp.modification_level == "none"
    data = report.to_json()
    assert data["complete"] and data["archived"] and data["terms_digest"] == flow.terms.digest
    json.dumps(data)
    report.require(archived=True)


def test_signed_but_not_archived(flow: Flow) -> None:
    report = verify(flow.world, flow.both_signed)
    assert report.complete and not report.archived
    assert [s.modification_level for s in report.signatures] == ["form-filling", "none"]
    with pytest.raises(ContractSignatureError, match="not archived"):
        report.require(archived=True)
    half = verify(flow.world, flow.customer_signed)
    assert half.valid and not half.complete
    with pytest.raises(ContractSignatureError, match="not signed by: supplier"):
        half.require()


def test_verify_needs_revocation_data(flow: Flow) -> None:
    report = verify(flow.world, flow.both_signed, crls=())
    assert not report.valid
    assert all("trust root" in " ".join(s.problems) for s in report.signatures)


def test_verify_with_untrusted_roots(flow: Flow) -> None:
    report = verify(flow.world, flow.archived, trust_roots=[flow.world.roots[0]])
    customer, supplier = report.signatures
    assert customer.ok and not supplier.ok and not supplier.trusted
    assert not report.complete


def test_trust_through_the_bridge(flow: Flow) -> None:
    """The German relying party trusts its own root only; the bridge's cross-certificates
    (with their policy mappings) lead to the Japanese signatory."""
    linked = flow.world.linked
    crosses = [
        *linked.de.bridge.issued_bundle("root"),
        *linked.bridge.bridge.issued_bundle("root"),
    ]
    report = verify(
        flow.world,
        flow.archived,
        trust_roots=[linked.root(linked.de)],
        other_certificates=crosses,
        crls=[*flow.world.crls_now, *flow.world.crls(linked.bridge)],
    )
    assert report.complete and report.archived, report.all_problems()


# -- refusals -------------------------------------------------------------------------------------


def test_person_without_signatory_role_is_refused(flow: Flow) -> None:
    with pytest.raises(ContractSignatureError, match=r"Petra Lang.*not an authorized signatory"):
        sign_as(flow.world, flow.rendered, flow.world.clerk)


def test_signatory_of_a_third_organization_is_refused(flow: Flow) -> None:
    with pytest.raises(
        ContractSignatureError, match="organization VATDE-555444333, which is not a party"
    ):
        sign_as(flow.world, flow.rendered, flow.world.outsider)


def test_registration_officer_is_refused(flow: Flow, world: ContractWorld) -> None:
    organization = world.linked.de_officer  # a registration officer: no signatory role
    assert organization.certificate is not None
    with pytest.raises(ContractSignatureError, match="not an authorized signatory"):
        sign_contract(
            flow.rendered,
            signer=organization.signer,
            chain=[organization.certificate],
            timestamp=world.tsa(world.linked.de),
            at=NOW,
        )


def test_signing_twice_is_refused(flow: Flow) -> None:
    with pytest.raises(ContractSignatureError, match="the customer has signed already"):
        sign_as(flow.world, flow.customer_signed, flow.world.customer)


def test_signing_an_archived_contract_is_refused(flow: Flow) -> None:
    reader = PdfFileReader(BytesIO(flow.archived))
    reader_fields = {n: v for n, v, _ in enumerate_sig_fields(reader)}
    assert reader_fields["supplier"] is not None
    with pytest.raises(ContractSignatureError, match="signed already"):
        sign_as(flow.world, flow.archived, flow.world.supplier)


def test_signing_after_expiry_is_refused(flow: Flow, world: ContractWorld) -> None:
    with pytest.raises(ContractSignatureError, match="not valid at 2027-09-09"):
        sign_contract(
            flow.rendered,
            signer=world.customer.holder.signer,
            chain=world.customer.chain,
            timestamp=world.tsa(world.linked.de),
            at=AFTER_EXPIRY,
        )


def test_a_pdf_without_terms_is_refused(flow: Flow) -> None:
    reader = PdfFileReader(BytesIO(flow.rendered))
    writer = IncrementalPdfFileWriter(BytesIO(flow.rendered))
    del writer.root["/Names"]
    writer.update_root()  # type: ignore[no-untyped-call]
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    assert reader.root["/Names"]
    with pytest.raises(ContractError, match=r"carries no .*terms\.json attachment"):
        sign_as(flow.world, out.getvalue(), flow.world.customer)
    with pytest.raises(ContractError, match="not a trustbridge contract"):
        verify(flow.world, out.getvalue())
    with pytest.raises(ContractError, match="not a readable PDF"):
        verify(flow.world, b"%PDF-1.7 nothing")


# -- alterations ----------------------------------------------------------------------------------


def flip_in_first_revision(pdf: bytes, first_revision_end: int) -> bytes:
    """Flip one byte inside the first stream of the document (in the first revision)."""
    start = pdf.index(b"stream\n") + len(b"stream\n") + 10
    assert start < first_revision_end
    altered = bytearray(pdf)
    altered[start] ^= 0x01
    return bytes(altered)


def append_page_content(pdf: bytes) -> bytes:
    """An incremental update that draws extra text on the page."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    extra = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 72 Td (Unit price 96.00 EUR) Tj ET")
    )
    contents = page.raw_get("/Contents")
    page["/Contents"] = generic.ArrayObject([contents, extra])
    writer.mark_update(page_ref)
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def replace_terms(pdf: bytes, data: bytes) -> bytes:
    """An incremental update that swaps the attached terms.json."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    spec_ref = names.raw_get(1)
    spec = spec_ref.get_object()
    stream = generic.StreamObject(
        {generic.pdf_name("/Type"): generic.pdf_name("/EmbeddedFile")}, stream_data=data
    )
    spec["/EF"]["/F"] = writer.add_object(stream)
    spec["/EF"]["/UF"] = spec["/EF"].raw_get("/F")
    writer.mark_update(spec_ref)
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def test_bytes_flipped_after_the_first_signature(flow: Flow) -> None:
    altered = flip_in_first_revision(flow.customer_signed, len(flow.rendered))
    with pytest.raises(ContractSignatureError, match="signature 'customer' does not verify"):
        sign_as(flow.world, altered, flow.world.supplier)
    report = verify(flow.world, altered)
    assert not report.valid and not report.complete
    customer = report.signature("customer")
    assert customer is not None and not customer.bottom_line and not customer.intact
    assert "the signed content was changed" in customer.problems[0]


def test_page_content_changed_after_the_first_signature(flow: Flow) -> None:
    altered = append_page_content(flow.customer_signed)
    with pytest.raises(
        ContractSignatureError, match="changed after signature 'customer' beyond filling in"
    ):
        sign_as(flow.world, altered, flow.world.supplier)
    report = verify(flow.world, altered)
    customer = report.signature("customer")
    assert customer is not None and customer.intact and customer.valid
    assert not customer.bottom_line and customer.modification_level == "other"
    assert not report.valid


def test_page_content_changed_after_archiving(flow: Flow) -> None:
    report = verify(flow.world, append_page_content(flow.archived))
    assert not report.valid and not report.complete
    assert all(s.modification_level == "other" for s in report.signatures)


def test_terms_changed_after_signing(flow: Flow) -> None:
    changed = ContractTerms.parse(
        terms_with(data_usage={**TERMS["data_usage"], "onward_sharing": True}), source="x"
    )
    altered = replace_terms(flow.customer_signed, changed.canonical_bytes())
    with pytest.raises(ContractSignatureError, match="signature 'customer'"):
        sign_as(flow.world, altered, flow.world.supplier)
    report = verify(flow.world, altered)
    assert report.terms.data_usage.onward_sharing  # what the document now claims ...
    customer = report.signature("customer")
    assert customer is not None and not customer.ok  # ... is not what was signed
    assert any("terms were changed" in p for p in customer.problems)


def test_terms_not_matching_the_schema_are_refused(flow: Flow) -> None:
    altered = replace_terms(flow.both_signed, b'{"type": "tb-contract-terms", "version": 1}')
    with pytest.raises(
        TermsError, match=r"terms\.json: \$ \(line 1\): violates the contract terms schema"
    ):
        verify(flow.world, altered)
    with pytest.raises(TermsError, match="not valid JSON"):
        verify(flow.world, replace_terms(flow.both_signed, b"{"))


# -- long-term validation -------------------------------------------------------------------------


def test_archived_contract_validates_offline_after_the_signers_expired(flow: Flow) -> None:
    world = flow.world
    assert all(
        p.certificate.not_valid_after_utc < AFTER_EXPIRY for p in (world.customer, world.supplier)
    )
    report = verify_archived_contract(
        flow.archived, trust_roots=world.roots, at=AFTER_EXPIRY, crls=world.crls_later
    )
    assert report.valid and report.complete and report.archived, report.all_problems()
    for signature in report.signatures:
        assert signature.bottom_line and signature.timestamp_valid
        assert signature.signing_time == NOW
    (stamp,) = report.document_timestamps
    assert stamp.valid and stamp.time == NOW
    # plain validation at that time fails: the signers' certificates have expired
    plain = verify(world, flow.archived, at=AFTER_EXPIRY, crls=world.crls_later)
    assert not plain.valid


def test_contract_without_archive_fails_after_the_signers_expired(flow: Flow) -> None:
    world = flow.world
    report = verify_archived_contract(
        flow.both_signed, trust_roots=world.roots, at=AFTER_EXPIRY, crls=world.crls_later
    )
    assert not report.valid and not report.complete and not report.archived
    assert "no document time stamp" in " ".join(report.problems)
    assert all(not s.bottom_line for s in report.signatures)


def test_archived_contract_with_the_wrong_anchor_fails_later(flow: Flow) -> None:
    world = flow.world
    stranger = world.linked.root(world.linked.bridge)
    report = verify_archived_contract(
        flow.archived, trust_roots=[stranger], at=AFTER_EXPIRY, crls=world.crls_later
    )
    assert not report.valid


# -- independent implementations ------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _pem(certificates: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def test_pdfsig_validates_both_signatures(flow: Flow, tmp_path: Path) -> None:
    certutil, pdfsig = _tool("certutil"), _tool("pdfsig")
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run([certutil, "-N", "--empty-password", "-d", f"sql:{nss}"], check=True)
    for index, root in enumerate(flow.world.roots):
        path = tmp_path / f"root{index}.der"
        path.write_bytes(root.public_bytes(Encoding.DER))
        subprocess.run(
            [certutil, "-A", "-d", f"sql:{nss}", "-n", f"root{index}", "-t", "CT,C,C", "-i", path],
            check=True,
        )
    document = tmp_path / "contract.pdf"
    document.write_bytes(flow.archived)
    # -no-ocsp: the responders the certificates name are not running in unit tests
    result = subprocess.run(
        [pdfsig, "-nssdir", f"sql:{nss}", "-no-ocsp", document],
        capture_output=True,
        text=True,
        check=False,
    )
    blocks = result.stdout.split("Signature #")[1:]
    by_field = {block.split("Signature Field Name: ")[1].split("\n")[0]: block for block in blocks}
    for name in ("customer", "supplier"):
        block = by_field[name]
        assert "Signature Type: ETSI.CAdES.detached" in block
        assert "Signature Validation: Signature is Valid." in block, block
        assert "Certificate Validation: Certificate is Trusted." in block, block

    # and pdfsig notices the alteration after the first signature
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(flip_in_first_revision(flow.customer_signed, len(flow.rendered)))
    result = subprocess.run(
        [pdfsig, "-nssdir", f"sql:{nss}", "-no-ocsp", altered],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Signature Validation: Digest Mismatch." in result.stdout, result.stdout


def _openssl_ts_verify(
    tmp_path: Path, name: str, token: bytes, chain: list[x509.Certificate], *args: str
) -> subprocess.CompletedProcess[str]:
    token_path = tmp_path / f"{name}.tsr"
    token_path.write_bytes(token)
    untrusted = tmp_path / f"{name}-chain.pem"
    untrusted.write_bytes(_pem(chain))
    return subprocess.run(
        [
            _tool("openssl"),
            "ts",
            "-verify",
            "-in",
            str(token_path),
            "-token_in",
            *args,
            "-CAfile",
            str(tmp_path / "roots.pem"),
            "-untrusted",
            str(untrusted),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _openssl_ts_verify_data(
    tmp_path: Path, name: str, token: bytes, chain: list[x509.Certificate], data: bytes
) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify`` of ``token`` as a time stamp over ``data``."""
    data_path = tmp_path / f"{name}.sig"
    data_path.write_bytes(data)
    return _openssl_ts_verify(tmp_path, name, token, chain, "-data", str(data_path))


def test_openssl_verifies_every_timestamp_token(flow: Flow, tmp_path: Path) -> None:
    world = flow.world
    (tmp_path / "roots.pem").write_bytes(_pem(world.roots))
    reader = PdfFileReader(BytesIO(flow.archived))
    chains = {
        "customer": list(world.tsa_chain(world.linked.de)),
        "supplier": list(world.tsa_chain(world.linked.jp)),
    }
    checked = 0
    for embedded in reader.embedded_regular_signatures:
        attributes = embedded.signer_info["unsigned_attrs"]
        (token,) = [
            a["values"][0] for a in attributes if a["type"].native == "signature_time_stamp_token"
        ]
        name, chain = embedded.field_name, chains[embedded.field_name]
        signature_value = embedded.signer_info["signature"].native
        result = _openssl_ts_verify_data(tmp_path, name, token.dump(), chain, signature_value)
        assert result.stdout.strip() == "Verification: OK", result.stdout + result.stderr
        # a token over other data does not verify
        result = _openssl_ts_verify_data(tmp_path, name, token.dump(), chain, b"something else")
        assert "Verification: OK" not in result.stdout
        checked += 1
    (stamp,) = reader.embedded_timestamp_signatures
    token = cms.ContentInfo({"content_type": "signed_data", "content": stamp.signed_data})
    result = _openssl_ts_verify(
        tmp_path,
        "archive",
        token.dump(),
        chains["customer"],
        "-digest",
        stamp.compute_digest().hex(),
    )
    assert result.stdout.strip() == "Verification: OK", result.stdout + result.stderr
    assert checked == 2


def test_a_refusing_time_stamp_authority_stops_signing(flow: Flow, world: ContractWorld) -> None:
    authority = world.tsa(world.linked.de)
    with pytest.raises(
        ContractSignatureError,
        match="signing failed: the time-stamp authority refused the request: The request is not",
    ):
        sign_contract(
            flow.rendered,
            signer=world.customer.holder.signer,
            chain=world.customer.chain,
            timestamp=lambda request: authority(b"not a request"),
            at=NOW,
        )
