"""Real ETSI TS 119 612 trusted lists (``shared/conformance/etsi-tl``): reading and verifying.

The LOTL is verified with its embedded signing certificate taken as the configured LOTL signer;
Luxembourg's and Slovakia's lists with the signers that LOTL announces for them.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.etsi import (
    GRANTED_STATUSES,
    MAX_LIST_SIZE,
    EtsiParseError,
    EtsiSignatureError,
    EtsiSignerError,
    EtsiStatusError,
    EtsiTrustedList,
    TrustService,
    is_granted,
    parse_trusted_list,
    signers_for,
    status_at,
    verify_trusted_list,
)

ETSI_TL = Path(__file__).parents[2].parent / "shared" / "conformance" / "etsi-tl"

if not ETSI_TL.is_dir():
    pytest.skip(f"ETSI trusted lists not found at {ETSI_TL}", allow_module_level=True)

_DS = "{http://www.w3.org/2000/09/xmldsig#}"
_STATUS = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"


def read(name: str) -> bytes:
    return (ETSI_TL / name).read_bytes()


def embedded_signer(data: bytes) -> x509.Certificate:
    """The certificate in the list's own signature (KeyInfo), read without our module."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    text = root.findtext(f"{_DS}Signature/{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
    assert text is not None
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- fixtures: each big file is read and verified once ---------------------------------------


@pytest.fixture(scope="module")
def lotl_data() -> bytes:
    return read("eu-lotl-250.xml")


@pytest.fixture(scope="module")
def lotl(lotl_data: bytes) -> EtsiTrustedList:
    return verify_trusted_list(
        lotl_data, signers=[embedded_signer(lotl_data)], source="eu-lotl-250.xml"
    )


@pytest.fixture(scope="module")
def lu_data() -> bytes:
    return read("LU.xml")


@pytest.fixture(scope="module")
def lu(lu_data: bytes, lotl: EtsiTrustedList) -> EtsiTrustedList:
    return verify_trusted_list(lu_data, signers=signers_for(lotl, "LU"), source="LU.xml")


@pytest.fixture(scope="module")
def sk(lotl: EtsiTrustedList) -> EtsiTrustedList:
    return verify_trusted_list(read("sk-tl.xml"), signers=signers_for(lotl, "SK"), source="sk")


@pytest.fixture(scope="module")
def mra() -> EtsiTrustedList:
    data = read("mra-lotl.xml")
    return verify_trusted_list(data, signers=[embedded_signer(data)], source="mra-lotl.xml")


# -- the README table ------------------------------------------------------------------------


def test_eu_lotl_verifies_with_its_embedded_signer(lotl: EtsiTrustedList, lotl_data: bytes) -> None:
    assert lotl.signer == embedded_signer(lotl_data)
    assert lotl.territory == "EU"
    assert lotl.tsl_type == "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUlistofthelists"
    assert lotl.sequence_number == 250
    assert lotl.version == 5
    assert lotl.issued_at == datetime(2019, 10, 4, 11, 0, tzinfo=UTC)
    assert lotl.next_update == datetime(2020, 4, 4, tzinfo=UTC)
    assert lotl.operator_name == "European Commission"
    assert lotl.providers == ()


def test_eu_lotl_pointers(lotl: EtsiTrustedList) -> None:
    # 32 territories (EU itself, 28 member states, IS, LI, NO); 12 also have a PDF pointer.
    assert len(lotl.pointers) == 44
    assert len({p.territory for p in lotl.pointers}) == 32
    assert sum(p.mime_type == "application/pdf" for p in lotl.pointers) == 12
    (lu_xml,) = [
        p
        for p in lotl.pointers
        if p.territory == "LU" and p.mime_type == "application/vnd.etsi.tsl+xml"
    ]
    assert lu_xml.location.endswith("/tsl-xml/tsl.xml")
    assert lu_xml.tsl_type == "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric"
    assert len(lu_xml.certificates) == 3
    assert lu_xml.mra is None
    # Bulgaria's pointer also names its signer by subject name and SKI.
    bg = next(p for p in lotl.pointers if p.territory == "BG")
    assert any(identity.subject_names and identity.skis for identity in bg.identities)


def test_luxembourg_verifies_with_a_signer_the_lotl_announces(
    lu: EtsiTrustedList, lotl: EtsiTrustedList
) -> None:
    assert lu.signer in signers_for(lotl, "LU")
    assert lu.territory == "LU"
    assert lu.sequence_number == 37
    assert lu.issued_at == datetime(2019, 8, 7, 1, 0, tzinfo=UTC)
    assert lu.next_update == datetime(2020, 2, 7, tzinfo=UTC)
    assert lu.operator_name == "ILNAS"
    assert len(lu.providers) == 3
    assert sum(len(p.services) for p in lu.providers) == 11
    # LU points back at the EU LOTL.
    assert [p.territory for p in lu.pointers] == ["EU"]


def test_slovakia_verifies_with_a_signer_the_lotl_announces(
    sk: EtsiTrustedList, lotl: EtsiTrustedList
) -> None:
    assert sk.signer in signers_for(lotl, "SK")
    assert sk.territory == "SK"
    assert sk.sequence_number == 59
    assert sk.issued_at == datetime(2019, 8, 23, 7, 0, tzinfo=UTC)
    assert len(sk.providers) == 6
    assert sum(len(p.services) for p in sk.providers) == 116


def test_mra_lotl_verifies_with_its_embedded_signer(mra: EtsiTrustedList) -> None:
    assert mra.sequence_number == 6
    # 2022-06-27T11:30:08.032+02:00, kept as UTC
    assert mra.issued_at == datetime(2022, 6, 27, 9, 30, 8, 32000, tzinfo=UTC)
    assert mra.signer is not None
    assert mra.signer.subject.rfc4514_string() == (
        "C=LU,OU=PKI-TEST,O=Nowina Solutions,CN=ZZ-LOTL-signer"
    )


def test_mra_equivalence_mappings(mra: EtsiTrustedList) -> None:
    agreements = [p for p in mra.pointers if p.mra is not None]
    assert len(agreements) == 1
    pointer = agreements[0]
    assert pointer.territory == "XX"
    assert pointer.tsl_type == "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/ZZlist"
    assert pointer.mra is not None
    assert pointer.mra.depth == 1
    (equivalence,) = pointer.mra.equivalences
    assert equivalence.legal_identifier == "QCForESig"
    assert equivalence.status == "http://ec.europa.eu/tools/lotl/mra/enacted"
    assert equivalence.status_starting_time == datetime(2020, 5, 16, 23, 59, 59, tzinfo=UTC)
    # the third country's service type maps onto the EU's CA/QC for e-signatures
    assert [t.service_type for t in equivalence.pointed_types] == [
        "http://zz-trusted-list.go.zz/TrstSvc/Svctype/CA/QC/for-eSig"
    ]
    (eu_type,) = equivalence.pointing_types
    assert eu_type.service_type == "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
    assert eu_type.additional_info == (
        "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures",
    )
    valid = {s.pointed_statuses: s.pointing_statuses for s in equivalence.statuses if s.valid}
    assert valid == {
        ("http://zz-trusted-list.go.zz/TrstSvc/TrustedList/Svcstatus/granted",): (
            _STATUS + "granted",
        )
    }
    invalid = [s for s in equivalence.statuses if not s.valid]
    assert invalid[0].pointing_statuses == (_STATUS + "withdrawn",)
    qualifiers = {q.pointed_qualifier: q.pointing_qualifier for q in equivalence.qualifiers}
    assert len(qualifiers) == 8
    assert (
        qualifiers["http://zz-trusted-list.go.zz/TrstSvc/TrustedList/SvcInfoExt/QCWithQSCD"]
        == "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/QCWithQSCD"
    )
    assert equivalence.certificate_contexts == (
        "http://ec.europa.eu/tools/lotl/mra/QcCompliance",
        "http://ec.europa.eu/tools/lotl/mra/QcType",
        "http://ec.europa.eu/tools/lotl/mra/QcQSCD",
    )


def test_broken_signature_is_rejected_with_the_failing_reference(lotl_data: bytes) -> None:
    with pytest.raises(EtsiSignatureError, match=r"digest mismatch in reference 1 of 2") as info:
        verify_trusted_list(
            read("eu-lotl-broken-sig.xml"),
            signers=[embedded_signer(lotl_data)],
            source="eu-lotl-broken-sig.xml",
        )
    assert info.value.reference == "the list itself"
    assert info.value.source == "eu-lotl-broken-sig.xml"
    assert isinstance(info.value, ValidationError)


def test_not_parsable_list_is_rejected(lotl_data: bytes) -> None:
    data = read("eu-lotl_not-parsable.xml")
    with pytest.raises(EtsiParseError, match=r"eu-lotl_not-parsable\.xml: not well-formed XML"):
        parse_trusted_list(data, source="eu-lotl_not-parsable.xml")
    with pytest.raises(EtsiParseError, match="tag mismatch") as info:
        verify_trusted_list(
            data, signers=[embedded_signer(lotl_data)], source="eu-lotl_not-parsable.xml"
        )
    assert isinstance(info.value, InputError)


# -- further rejections ----------------------------------------------------------------------


def test_tampered_provider_name_is_rejected(lu_data: bytes, lotl: EtsiTrustedList) -> None:
    original = b'<Name xml:lang="en">LuxTrust S.A.</Name>'
    assert lu_data.count(original) == 1
    tampered = lu_data.replace(original, b'<Name xml:lang="en">LuxTrusted S.A.</Name>')
    # Unverified, the change is visible ...
    assert parse_trusted_list(tampered, source="LU.xml").providers[0].name == "LuxTrusted S.A."
    # ... verified, it is refused.
    with pytest.raises(EtsiSignatureError, match=r"reference 1 of 2 \(the list itself\)"):
        verify_trusted_list(tampered, signers=signers_for(lotl, "LU"), source="LU.xml")


def test_tampered_signed_properties_are_rejected(lu_data: bytes, lotl: EtsiTrustedList) -> None:
    original = b"<xades:SigningTime>2019-08-07T13:26:13Z</xades:SigningTime>"
    assert lu_data.count(original) == 1
    tampered = lu_data.replace(original, original.replace(b"13:26", b"14:26"))
    with pytest.raises(EtsiSignatureError, match=r"reference 2 of 2") as info:
        verify_trusted_list(tampered, signers=signers_for(lotl, "LU"), source="LU.xml")
    assert info.value.reference == "the XAdES signed properties"


def test_signature_must_cover_the_whole_list(lu_data: bytes, lotl: EtsiTrustedList) -> None:
    partial = lu_data.replace(b'URI=""', b'URI="#TrustServiceStatusList-1"', 1)
    with pytest.raises(EtsiSignatureError, match=r"the whole list \(URI=\"\"\)"):
        verify_trusted_list(partial, signers=signers_for(lotl, "LU"), source="LU.xml")


def test_sha1_signature_method_is_refused(lu_data: bytes, lotl: EtsiTrustedList) -> None:
    sha256 = b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert lu_data.count(sha256) == 1
    weak = lu_data.replace(sha256, b"http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    with pytest.raises(EtsiSignatureError, match=r"cannot be verified.*SHA1"):
        verify_trusted_list(weak, signers=signers_for(lotl, "LU"), source="LU.xml")


def test_list_signed_by_an_unannounced_certificate_is_rejected(
    lu_data: bytes, lotl: EtsiTrustedList
) -> None:
    with pytest.raises(EtsiSignerError, match="not among the 2 configured signer"):
        verify_trusted_list(lu_data, signers=signers_for(lotl, "SK"), source="LU.xml")


def test_no_signers_is_a_failure(lu_data: bytes, lotl: EtsiTrustedList) -> None:
    assert signers_for(lotl, "ZZ") == ()
    with pytest.raises(EtsiSignerError, match="no signer certificates"):
        verify_trusted_list(lu_data, signers=signers_for(lotl, "ZZ"), source="LU.xml")


def test_announced_certificate_in_keyinfo_does_not_help_a_foreign_key(
    lu_data: bytes, lotl: EtsiTrustedList
) -> None:
    """KeyInfo is not covered by the list reference: swapping in an announced certificate
    leaves a signature value that does not verify with it."""
    sk_signers = signers_for(lotl, "SK")
    swapped = _swap_keyinfo_certificate(lu_data, sk_signers[0])
    with pytest.raises(EtsiSignatureError, match="signature value does not verify"):
        verify_trusted_list(swapped, signers=sk_signers, source="LU.xml")


def test_signer_not_valid_at_issue_time_is_rejected(lu_data: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=Expired TL signer,C=LU")
    start = datetime(2010, 1, 1, tzinfo=UTC)
    expired = self_signed_certificate(
        FileSigner(key), name, not_before=start, not_after=start + timedelta(days=365)
    )
    swapped = _swap_keyinfo_certificate(lu_data, expired)
    with pytest.raises(EtsiSignerError, match=r"not valid at the list's issue time 2019-08-07"):
        verify_trusted_list(swapped, signers=[expired], source="LU.xml")


def test_signers_for_needs_a_verified_lotl(lotl_data: bytes) -> None:
    parsed = parse_trusted_list(lotl_data, source="eu-lotl-250.xml")
    assert parsed.signer is None
    with pytest.raises(EtsiSignerError, match="parsed, not verified"):
        signers_for(parsed, "LU")


def test_signers_for_takes_only_xml_pointers(lotl: EtsiTrustedList) -> None:
    lu_signers = signers_for(lotl, "lu")
    assert len(lu_signers) == 3
    xml_pointer = next(
        p
        for p in lotl.pointers
        if p.territory == "LU" and p.mime_type == "application/vnd.etsi.tsl+xml"
    )
    assert lu_signers == xml_pointer.certificates


_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#"><SchemeInformation>
<TSLSequenceNumber>&lol9;</TSLSequenceNumber></SchemeInformation></TrustServiceStatusList>
"""


def test_xml_bomb_is_refused(lotl_data: bytes) -> None:
    with pytest.raises(EtsiParseError, match=r"bomb\.xml: a document type declaration"):
        parse_trusted_list(_BOMB, source="bomb.xml")
    with pytest.raises(EtsiParseError, match="document type declaration"):
        verify_trusted_list(_BOMB, signers=[embedded_signer(lotl_data)], source="bomb.xml")


def test_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#">&e;'
        b"</TrustServiceStatusList>"
    )
    with pytest.raises(EtsiParseError, match="document type declaration"):
        parse_trusted_list(xxe, source="xxe.xml")


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(EtsiParseError, match="more than the"):
        parse_trusted_list(b" " * (MAX_LIST_SIZE + 1), source="huge.xml")


def test_other_xml_is_not_a_trusted_list() -> None:
    with pytest.raises(EtsiParseError, match="not a TS 119 612 TrustServiceStatusList"):
        parse_trusted_list(b"<feed/>", source="feed.xml")


def test_missing_mandatory_field_names_the_field(lu_data: bytes) -> None:
    broken = lu_data.replace(b"<TSLSequenceNumber>37</TSLSequenceNumber>", b"")
    with pytest.raises(
        EtsiParseError, match=r"LU\.xml: SchemeInformation has no TSLSequenceNumber"
    ):
        parse_trusted_list(broken, source="LU.xml")


# -- services, history and status ------------------------------------------------------------


def _luxtrust_qualified_ca(lu: EtsiTrustedList) -> TrustService:
    provider = lu.providers[0]
    assert provider.name == "LuxTrust S.A."
    assert provider.trade_names == ("VATLU-20976985", "TVALU-20976985")
    service = provider.services[0]
    assert service.name == "LuxTrust Qualified Certification Authority"
    return service


def test_service_fields(lu: EtsiTrustedList) -> None:
    service = _luxtrust_qualified_ca(lu)
    assert service.service_type == "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
    assert service.status == _STATUS + "withdrawn"
    assert service.status_starting_time == datetime(2017, 2, 23, tzinfo=UTC)
    assert service.additional_info == (
        "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures",
    )
    (cert,) = service.certificates
    assert cert.subject.rfc4514_string() == "CN=LuxTrust Qualified CA,O=LuxTrust S.A.,C=LU"
    assert service.identities[0].subject_names == ("CN=LuxTrust Qualified CA,O=LuxTrust S.A.,C=LU",)
    assert [(h.status.rpartition("/")[2], h.starting_time) for h in service.history] == [
        ("granted", utc("2016-06-30T22:00:00Z")),
        ("undersupervision", utc("2013-10-13T00:00:00Z")),
        ("accreditationceased", utc("2013-10-12T23:59:59Z")),
        ("accredited", utc("2009-10-13T00:00:00Z")),
        ("undersupervision", utc("2008-07-29T00:00:00Z")),
    ]


@pytest.mark.parametrize(
    ("when", "status", "granted"),
    [
        ("2008-07-29T00:00:00Z", "undersupervision", True),
        ("2010-01-01T00:00:00Z", "accredited", True),
        ("2013-10-13T00:00:00Z", "undersupervision", True),
        ("2013-10-12T23:59:59.5Z", "accreditationceased", False),
        ("2016-12-01T00:00:00Z", "granted", True),
        ("2017-02-23T00:00:00Z", "withdrawn", False),
        ("2025-01-01T00:00:00Z", "withdrawn", False),
    ],
)
def test_status_at_follows_the_history(
    lu: EtsiTrustedList, when: str, status: str, granted: bool
) -> None:
    found = status_at(_luxtrust_qualified_ca(lu), utc(when))
    assert found == _STATUS + status
    assert is_granted(found) is granted


def test_status_before_the_first_is_an_error(lu: EtsiTrustedList) -> None:
    with pytest.raises(EtsiStatusError, match="first status starts at 2008-07-29"):
        status_at(_luxtrust_qualified_ca(lu), utc("2008-07-28T23:59:59Z"))


def test_national_root_status_before_and_after_eidas(sk: EtsiTrustedList) -> None:
    root = sk.providers[0].services[0]
    assert root.status == _STATUS + "recognisedatnationallevel"
    assert [h.status for h in root.history] == [_STATUS + "setbynationallaw"]
    assert status_at(root, utc("2010-01-01T00:00:00Z")) == _STATUS + "setbynationallaw"
    assert all(is_granted(status_at(root, utc(t))) for t in ("2010-01-01", "2019-01-01"))


@pytest.mark.parametrize(
    ("status", "granted"),
    [
        ("granted", True),
        ("recognisedatnationallevel", True),
        ("undersupervision", True),
        ("supervisionincessation", True),
        ("accredited", True),
        ("setbynationallaw", True),
        ("withdrawn", False),
        ("deprecatedatnationallevel", False),
        ("supervisionceased", False),
        ("supervisionrevoked", False),
        ("accreditationceased", False),
        ("accreditationrevoked", False),
        ("deprecatedbynationallaw", False),
        ("Granted", False),
    ],
)
def test_is_granted(status: str, granted: bool) -> None:
    assert is_granted(_STATUS + status) is granted


def test_is_granted_fails_closed_for_foreign_uris() -> None:
    assert not is_granted("http://zz-trusted-list.go.zz/TrstSvc/TrustedList/Svcstatus/granted")
    assert not is_granted("")
    assert len(GRANTED_STATUSES) == 6


# -- helpers ---------------------------------------------------------------------------------


def _swap_keyinfo_certificate(data: bytes, cert: x509.Certificate) -> bytes:
    """The list with ``cert`` in its signature's KeyInfo instead of the original certificate."""
    original = embedded_signer(data)
    old = base64.b64encode(original.public_bytes(Encoding.DER))
    new = base64.b64encode(cert.public_bytes(Encoding.DER))
    assert old in data, "the KeyInfo certificate is expected on one line"
    return data.replace(old, new, 1)
