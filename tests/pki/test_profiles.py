"""Identity profiles: subject names, alternative names, validation, key types and usages."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from asn1crypto import core as asn1
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.pki.pkifactory import (
    machine_subject,
    organization_subject,
    person_subject,
    software_subject,
)
from trustbridge import oids
from trustbridge.errors import ProfileError
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    SoftwareSubject,
    Subject,
    SubjectKind,
    hardware_type_oid,
    key_usage,
    profile_for,
    subject_from_dict,
)


class HardwareModuleName(asn1.Sequence):  # type: ignore[misc]
    """RFC 4108 section 5: our own decoder, independent of the one the profile encodes with."""

    _fields: ClassVar[list[tuple[str, type[Any]]]] = [
        ("hw_type", asn1.ObjectIdentifier),
        ("hw_serial_num", asn1.OctetString),
    ]


def _attrs(name: x509.Name) -> list[tuple[str, str]]:
    return [(a.oid.dotted_string, str(a.value)) for a in name]


# -- organization ------------------------------------------------------------------------------


def test_organization_name_follows_etsi_legal_person_profile() -> None:
    subject = organization_subject()
    assert subject.kind is SubjectKind.ORGANIZATION
    assert _attrs(subject.x509_name()) == [
        (NameOID.COUNTRY_NAME.dotted_string, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, "Muster Maschinenbau GmbH"),
        ("2.5.4.97", "VATDE-123456789"),
        (NameOID.LOCALITY_NAME.dotted_string, "Stuttgart"),
        (NameOID.COMMON_NAME.dotted_string, "Muster Maschinenbau GmbH"),
    ]
    assert subject.alt_names() == []
    assert subject.display_name == "Muster Maschinenbau GmbH"


@pytest.mark.parametrize(
    "identifier",
    ["LEIXG-529900T8BM49AURSDO55", "NTRJP-1234567890123", "PSDDE-BAFIN-1234", "JP:JP-1234"],
)
def test_organization_identifier_forms_are_accepted(identifier: str) -> None:
    subject = OrganizationSubject(name="Hayabusa", country="JP", identifier=identifier)
    attributes = subject.x509_name().get_attributes_for_oid(oids.ID_AT_ORGANIZATION_IDENTIFIER)
    assert [a.value for a in attributes] == [identifier]


@pytest.mark.parametrize("identifier", ["DE123456789", "VAT-DE-1", "vatde-123", "XYZDE-1", ""])
def test_invalid_organization_identifier_is_refused(identifier: str) -> None:
    with pytest.raises(ProfileError, match="does not follow ETSI EN 319 412-1") as info:
        OrganizationSubject(name="Muster", country="DE", identifier=identifier)
    assert info.value.hint is not None
    assert "VATDE-" in info.value.hint


@pytest.mark.parametrize("country", ["de", "DEU", "Germany", ""])
def test_bad_country_is_refused(country: str) -> None:
    with pytest.raises(ProfileError, match="is not an ISO 3166 two-letter code"):
        OrganizationSubject(name="Muster", country=country, identifier="VATDE-1")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "organization name must not be empty"),
        ("x" * 65, "longer than 64 characters"),
        ("Muster\nGmbH", "contains control characters"),
    ],
)
def test_bad_organization_name_is_refused(name: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        OrganizationSubject(name=name, country="DE", identifier="VATDE-1")


def test_names_are_stripped() -> None:
    assert OrganizationSubject(name="  Muster  ", country="DE", identifier="VATDE-1").name == (
        "Muster"
    )


# -- person ------------------------------------------------------------------------------------


def test_person_name_has_given_name_surname_title_and_email() -> None:
    subject = person_subject(roles=frozenset({Role.OPERATOR, Role.REGISTRATION_OFFICER}))
    assert subject.kind is SubjectKind.PERSON
    assert _attrs(subject.x509_name()) == [
        (NameOID.COUNTRY_NAME.dotted_string, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, "Muster Maschinenbau GmbH"),
        ("2.5.4.97", "VATDE-123456789"),
        (NameOID.GIVEN_NAME.dotted_string, "Erika"),
        (NameOID.SURNAME.dotted_string, "Mustermann"),
        (NameOID.SERIAL_NUMBER.dotted_string, "PNODE-4711"),
        (NameOID.TITLE.dotted_string, "operator, registration-officer"),
        (NameOID.COMMON_NAME.dotted_string, "Erika Mustermann"),
    ]
    assert subject.alt_names() == [x509.RFC822Name("erika.mustermann@muster-maschinenbau.example")]


def test_person_without_roles_or_email_has_no_title_and_no_alt_names() -> None:
    subject = PersonSubject(given_name="Kenji", surname="Sato", country="JP", organization="Acme")
    name = subject.x509_name()
    assert name.get_attributes_for_oid(NameOID.TITLE) == []
    assert name.get_attributes_for_oid(oids.ID_AT_ORGANIZATION_IDENTIFIER) == []
    assert subject.alt_names() == []
    assert subject.roles == frozenset()


@pytest.mark.parametrize("email", ["erika", "erika@", "erika@example", "er ika@example.com"])
def test_bad_email_is_refused(email: str) -> None:
    with pytest.raises(ProfileError, match=r"e-mail address .* is not valid"):
        PersonSubject(
            given_name="Erika", surname="Mustermann", country="DE", organization="M", email=email
        )


def test_person_with_bad_organization_identifier_is_refused() -> None:
    with pytest.raises(ProfileError, match="does not follow ETSI"):
        PersonSubject(
            given_name="Erika",
            surname="Mustermann",
            country="DE",
            organization="M",
            organization_identifier="123",
        )


def test_role_parse() -> None:
    assert Role.parse(" Registration-Officer ") is Role.REGISTRATION_OFFICER
    assert Role.OPERATOR.oid == oids.ROLE_OPERATOR
    with pytest.raises(ProfileError, match="unknown role 'admin'"):
        Role.parse("admin")


# -- machine -----------------------------------------------------------------------------------


def test_machine_has_hardware_module_name_and_uri() -> None:
    subject = machine_subject()
    assert subject.kind is SubjectKind.MACHINE
    assert _attrs(subject.x509_name()) == [
        (NameOID.COUNTRY_NAME.dotted_string, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, "Muster Maschinenbau GmbH"),
        (NameOID.SERIAL_NUMBER.dotted_string, "MX500-000042"),
        (NameOID.COMMON_NAME.dotted_string, "MX-500 Press MX500-000042"),
    ]
    alt_names = subject.alt_names()
    uris = [n.value for n in alt_names if isinstance(n, x509.UniformResourceIdentifier)]
    assert uris == ["urn:trustbridge:machine:Muster-Maschinenbau-GmbH-MX-500-Press:MX500-000042"]
    assert [n.value for n in alt_names if isinstance(n, x509.DNSName)] == [
        "mx500-42.muster-maschinenbau.example"
    ]
    others = [n for n in alt_names if isinstance(n, x509.OtherName)]
    assert len(others) == 1
    assert others[0].type_id == x509.ObjectIdentifier("1.3.6.1.5.5.7.8.4")
    hw = HardwareModuleName.load(others[0].value)
    assert (
        hw["hw_type"].dotted
        == hardware_type_oid("Muster Maschinenbau GmbH", "MX-500 Press").dotted_string
    )
    assert hw["hw_serial_num"].native == b"MX500-000042"


def test_machine_application_uri_replaces_the_generated_one() -> None:
    subject = MachineSubject(
        manufacturer="Hayabusa Sensor Components K.K.",
        model="PS-200",
        serial_number="PS200-7",
        country="JP",
        application_uri="urn:hayabusa:ps-200:PS200-7",
    )
    uris = [n.value for n in subject.alt_names() if isinstance(n, x509.UniformResourceIdentifier)]
    assert uris == ["urn:hayabusa:ps-200:PS200-7"]


def test_hardware_type_oid_is_stable_and_under_our_arc() -> None:
    first = hardware_type_oid("Hayabusa Sensor Components K.K.", "PS-200")
    assert first == hardware_type_oid("Hayabusa Sensor Components K.K.", "PS-200")
    assert first != hardware_type_oid("Hayabusa Sensor Components K.K.", "PS-300")
    assert first.dotted_string.startswith(oids.ARC_HARDWARE_TYPES + ".")


@pytest.mark.parametrize("uri", ["not a uri", "/relative/path", "urn:", "opc.tcp ://x"])
def test_bad_application_uri_is_refused(uri: str) -> None:
    with pytest.raises(ProfileError, match=r"application URI .* is not an absolute URI"):
        MachineSubject(
            manufacturer="M", model="X", serial_number="1", country="DE", application_uri=uri
        )


@pytest.mark.parametrize("host", ["-bad.example", "bad_host.example", "a..b", "x" * 64 + ".de"])
def test_bad_dns_name_is_refused(host: str) -> None:
    with pytest.raises(ProfileError, match="is not a valid host name"):
        MachineSubject(
            manufacturer="M", model="X", serial_number="1", country="DE", dns_names=(host,)
        )


# -- software ----------------------------------------------------------------------------------


def test_software_uri_names_operator_name_and_version() -> None:
    subject = software_subject()
    assert subject.kind is SubjectKind.SOFTWARE
    assert subject.uri == "urn:trustbridge:software:VATDE-123456789:line-controller:2.4.1"
    assert subject.alt_names() == [x509.UniformResourceIdentifier(subject.uri)]
    assert _attrs(subject.x509_name()) == [
        (NameOID.COUNTRY_NAME.dotted_string, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, "Muster Maschinenbau GmbH"),
        ("2.5.4.97", "VATDE-123456789"),
        (NameOID.COMMON_NAME.dotted_string, "Line Controller 2.4.1"),
    ]


@pytest.mark.parametrize("version", ["", "v 1", ".1", "1" * 33, "1.0;rm"])
def test_bad_software_version_is_refused(version: str) -> None:
    with pytest.raises(ProfileError, match="is not a version string"):
        SoftwareSubject(
            name="Line Controller",
            version=version,
            organization="Muster",
            organization_identifier="VATDE-1",
            country="DE",
        )


def test_software_needs_an_etsi_organization_identifier() -> None:
    with pytest.raises(ProfileError, match="does not follow ETSI"):
        SoftwareSubject(
            name="Line Controller",
            version="1.0",
            organization="Muster",
            organization_identifier="Muster",
            country="DE",
        )


# -- serialisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        organization_subject(),
        person_subject(),
        person_subject(roles=frozenset(Role)),
        machine_subject(),
        MachineSubject(
            manufacturer="M",
            model="X",
            serial_number="1",
            country="JP",
            application_uri="urn:m:x:1",
        ),
        software_subject(),
    ],
    ids=lambda s: f"{s.kind}",
)
def test_subject_round_trips_through_dict(subject: Subject) -> None:
    data = subject.to_dict()
    assert data["kind"] == subject.kind.value
    assert subject_from_dict(data) == subject


def test_to_dict_is_plain_data() -> None:
    data = person_subject(roles=frozenset({Role.OPERATOR, Role.AUTHORIZED_SIGNATORY})).to_dict()
    assert data["roles"] == ["authorized-signatory", "operator"]
    assert "kind" in data
    assert all(not isinstance(v, frozenset | tuple) for v in data.values())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "M", "country": "DE", "identifier": "VATDE-1"}, "has no valid kind: None"),
        ({"kind": "robot", "name": "M"}, "has no valid kind: 'robot'"),
        (
            {"kind": "organization", "name": "M", "country": "DE", "identifier": "VATDE-1", "x": 1},
            "do not fit the organization profile",
        ),
        (
            {
                "kind": "person",
                "given_name": "E",
                "surname": "M",
                "country": "DE",
                "organization": "M",
                "roles": ["boss"],
            },
            "unknown role 'boss'",
        ),
        ({"kind": "organization", "name": "M", "country": "DE", "identifier": "1"}, "ETSI"),
    ],
)
def test_subject_from_dict_refuses_bad_data(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        subject_from_dict(data)


# -- profiles ----------------------------------------------------------------------------------


def test_there_is_no_key_agreement_profile_for_people() -> None:
    with pytest.raises(ProfileError, match="no key-agreement profile for person identities"):
        profile_for(SubjectKind.PERSON, Purpose.KEY_AGREEMENT)
    with pytest.raises(ProfileError, match="no key-agreement profile for machine identities"):
        profile_for(SubjectKind.MACHINE, Purpose.KEY_AGREEMENT)


@pytest.mark.parametrize("kind", [SubjectKind.ORGANIZATION, SubjectKind.SOFTWARE])
def test_key_agreement_profile_takes_p256_only(kind: SubjectKind) -> None:
    profile = profile_for(kind, Purpose.KEY_AGREEMENT)
    profile.check_key_type(KeyType.P256)
    for key_type in set(KeyType) - {KeyType.P256}:
        with pytest.raises(ProfileError, match=f"key type {key_type.value} is not allowed"):
            profile.check_key_type(key_type)
    usage = profile.key_usage_extension(KeyType.P256)
    assert usage.key_agreement
    assert not usage.digital_signature
    assert not usage.encipher_only
    assert not usage.decipher_only
    assert profile.extended_key_usage == ()


@pytest.mark.parametrize("kind", list(SubjectKind))
def test_identity_profiles_accept_every_key_type(kind: SubjectKind) -> None:
    profile = profile_for(kind)
    assert profile.purpose is Purpose.IDENTITY
    for key_type in KeyType:
        profile.check_key_type(key_type)
    assert profile.key_types == frozenset(KeyType)
    assert profile.default_lifetime <= profile.max_lifetime
    assert ExtendedKeyUsageOID.CLIENT_AUTH in profile.extended_key_usage


def test_rsa_machine_and_software_keys_also_encipher() -> None:
    for kind in (SubjectKind.MACHINE, SubjectKind.SOFTWARE):
        rsa_usage = profile_for(kind).key_usage_extension(KeyType.RSA2048)
        assert rsa_usage.digital_signature
        assert rsa_usage.key_encipherment
        assert rsa_usage.data_encipherment
        ec_usage = profile_for(kind).key_usage_extension(KeyType.P256)
        assert not ec_usage.key_encipherment
        assert not ec_usage.data_encipherment
    person_rsa = profile_for(SubjectKind.PERSON).key_usage_extension(KeyType.RSA2048)
    assert not person_rsa.key_encipherment
    assert person_rsa.content_commitment


def test_only_machines_may_have_ca_generated_keys() -> None:
    assert {k for k in SubjectKind if profile_for(k).ca_generated_key} == {SubjectKind.MACHINE}


def test_key_usage_asserts_exactly_the_bits_named() -> None:
    usage = key_usage("digital_signature", "key_cert_sign", "crl_sign")
    assert usage.digital_signature and usage.key_cert_sign and usage.crl_sign
    assert not (usage.content_commitment or usage.key_encipherment or usage.key_agreement)
    with pytest.raises(ValueError, match="no key usage bit 'cert_sign'"):
        key_usage("cert_sign")


def test_common_name_fits_64_bytes_of_utf8() -> None:
    # X.520 ub-common-name; cryptography counts UTF-8 bytes and refuses longer values.
    person = PersonSubject(
        given_name="Jürgen-Ängelbert" * 2,
        surname="Müller-Lüdenscheidt",
        country="DE",
        organization="Muster Maschinenbau GmbH",
    )
    common_name = person.x509_name().get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(common_name, str)
    assert len(common_name.encode()) <= 64
    assert person.display_name.startswith(common_name)
    assert person.name_der() == person.x509_name().public_bytes()


_VALID_FIELDS: dict[type[Any], dict[str, Any]] = {
    OrganizationSubject: {"name": "Muster", "country": "DE", "identifier": "VATDE-123456789"},
    SoftwareSubject: {
        "name": "Line Controller",
        "version": "2.4.1",
        "organization": "Muster",
        "organization_identifier": "VATDE-123456789",
        "country": "DE",
    },
    MachineSubject: {
        "manufacturer": "Muster",
        "model": "MX",
        "serial_number": "1",
        "country": "DE",
    },
    PersonSubject: {"given_name": "Erika", "surname": "M", "country": "DE", "organization": "M"},
}


@pytest.mark.parametrize("serial", ["SN_1", "Ä-1", "a@b", "x*y"])
@pytest.mark.parametrize("kind", [MachineSubject, PersonSubject])
def test_serial_numbers_must_be_printable_strings(kind: type[Any], serial: str) -> None:
    # X.520 serialNumber is a PrintableString; cryptography would write these bytes anyway.
    with pytest.raises(ProfileError, match="must be a PrintableString"):
        kind(**{**_VALID_FIELDS[kind], "serial_number": serial})


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        (OrganizationSubject, {"country": "DE\n"}),
        (OrganizationSubject, {"identifier": "VATDE-123456789\n"}),
        (SoftwareSubject, {"version": "2.4.1\n"}),
        (MachineSubject, {"application_uri": "urn:x:y\n"}),
        (MachineSubject, {"dns_names": ("press.example\n",)}),
        (PersonSubject, {"email": "erika@muster.example\n"}),
    ],
)
def test_a_trailing_newline_is_not_a_valid_value(kind: type[Any], change: dict[str, Any]) -> None:
    # "$" matches before a final newline; the checks match the whole value.
    kind(**_VALID_FIELDS[kind])  # valid without the change
    with pytest.raises(ProfileError):
        kind(**{**_VALID_FIELDS[kind], **change})
