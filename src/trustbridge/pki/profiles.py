"""Identity profiles: what a certificate for an organization, a person, a machine or a software
process contains.

- organization: legal-person profile of ETSI EN 319 412-3;
- person: natural-person profile of ETSI EN 319 412-2, tied to an organization, with roles;
- machine: manufacturer, model and serial number (RFC 4108 hardwareModuleName), URI SAN;
- software: a URI SAN naming the software, its version and the operating organization.

A subject is a frozen value object that validates on construction; :func:`profile_for` tells
which key types, key usages and lifetimes its certificates get.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustbridge import oids
from trustbridge.errors import ProfileError
from trustbridge.pki import der
from trustbridge.pki.keys import KeyType

__all__ = [
    "IdentityProfile",
    "MachineSubject",
    "OrganizationSubject",
    "PersonSubject",
    "Purpose",
    "Role",
    "SoftwareSubject",
    "Subject",
    "SubjectKind",
    "hardware_type_oid",
    "key_usage",
    "profile_for",
    "roles_of",
    "subject_from_dict",
    "subject_kind_of",
]


#: The bits of the KeyUsage extension (RFC 5280 4.2.1.3), as ``cryptography`` names them.
KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(*names: str) -> x509.KeyUsage:
    """The KeyUsage extension asserting exactly the bits ``names`` (``digital_signature``,
    ``key_cert_sign``, ...)."""
    unknown = set(names) - set(KEY_USAGE_BITS)
    if unknown:
        raise ValueError(f"no key usage bit {sorted(unknown)[0]!r}")
    return x509.KeyUsage(**{bit: bit in names for bit in KEY_USAGE_BITS})


class SubjectKind(enum.StrEnum):
    """The four kinds of identity holders the paper names."""

    ORGANIZATION = "organization"
    PERSON = "person"
    MACHINE = "machine"
    SOFTWARE = "software"


class Purpose(enum.StrEnum):
    """What a certificate's key is for."""

    IDENTITY = "identity"
    #: A separate P-256 key-agreement certificate, so that others can encrypt to the holder.
    KEY_AGREEMENT = "key-agreement"


class Role(enum.StrEnum):
    """Roles a person certificate can carry, each as a certificate policy OID."""

    REGISTRATION_OFFICER = "registration-officer"
    OPERATOR = "operator"
    AUTHORIZED_SIGNATORY = "authorized-signatory"

    @property
    def oid(self) -> x509.ObjectIdentifier:
        return _ROLE_OIDS[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ProfileError(f"unknown role {text!r}", hint=f"choose from: {choices}") from None


_ROLE_OIDS = {
    Role.REGISTRATION_OFFICER: oids.ROLE_REGISTRATION_OFFICER,
    Role.OPERATOR: oids.ROLE_OPERATOR,
    Role.AUTHORIZED_SIGNATORY: oids.ROLE_AUTHORIZED_SIGNATORY,
}
_OID_ROLES = {oid: role for role, oid in _ROLE_OIDS.items()}

# ETSI EN 319 412-1 5.1.4: 3 letters type, 2 letters country, hyphen, identifier;
# or a national scheme "XX:" followed by the country and the identifier.
_ORG_ID = re.compile(r"^(?:(?:VAT|NTR|PSD|LEI)[A-Z]{2}|[A-Z]{2}:[A-Z]{2})-[A-Za-z0-9.\-/]{1,50}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$")
_DNS = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$"
)
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,31}$")
_UB_NAME = 64  # X.520 upper bound for commonName, organizationName, ...
_T = TypeVar("_T")
_CONTROL = re.compile(r"[\x00-\x1f]")


@functools.lru_cache(maxsize=4096)
def _rdn(oid: x509.ObjectIdentifier, value: str) -> x509.RelativeDistinguishedName:
    """A name attribute as the single-valued RDN that holds it; cached, since a batch
    repeats most of them (``x509.Name`` wraps a bare attribute in such an RDN itself)."""
    return x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)])


def _common_name(value: str) -> str:
    """``value`` cut to the 64 bytes of UTF-8 a commonName may have (X.520 ub-common-name,
    which ``cryptography`` counts in bytes), at a character boundary."""
    return value.encode()[:_UB_NAME].decode(errors="ignore")


def _text(field_name: str, value: str, *, limit: int = _UB_NAME) -> str:
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{field_name} must not be empty")
    if len(value) > limit:
        raise ProfileError(f"{field_name} {value!r} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise ProfileError(f"{field_name} {value!r} contains control characters")
    return value


#: X.680 41.4 PrintableString: what X.520 serialNumber (and countryName) may hold.
_PRINTABLE_STRING = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")


def _serial(field_name: str, value: str) -> str:
    value = _text(field_name, value)
    if not _PRINTABLE_STRING.fullmatch(value):
        raise ProfileError(
            f"{field_name} {value!r} must be a PrintableString (X.520 serialNumber)",
            hint="use letters A-Z and a-z, digits, spaces and ' ( ) + , - . / : = ?",
        )
    return value


def _country(value: str) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise ProfileError(f"country {value!r} is not an ISO 3166 two-letter code such as DE or JP")
    return value


def _org_identifier(value: str) -> str:
    if not isinstance(value, str) or not _ORG_ID.fullmatch(value):
        raise ProfileError(
            f"organization identifier {value!r} does not follow ETSI EN 319 412-1",
            hint="use type + country + '-' + id, for example LEIXG-5299..., VATDE-123456789, "
            "NTRJP-1234567890123",
        )
    return value


def _uri(field_name: str, value: str) -> str:
    if not isinstance(value, str) or not _URI.fullmatch(value):
        raise ProfileError(f"{field_name} {value!r} is not an absolute URI")
    return value


def _dns_names(values: tuple[str, ...]) -> tuple[str, ...]:
    for name in values:
        if not _DNS.fullmatch(name):
            raise ProfileError(f"DNS name {name!r} is not a valid host name")
    return tuple(values)


def _ip_addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """IPv4/IPv6 addresses for the SAN (OPC UA servers name their host's addresses)."""
    normalized = []
    for text in values:
        try:
            normalized.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise ProfileError(f"IP address {text!r} is not an IPv4 or IPv6 address") from None
    return tuple(normalized)


def _ip_names(values: tuple[str, ...]) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(a)) for a in values]


#: Name attributes that RFC 5280 (Appendix A) and X.520 type as PrintableString, as
#: ``cryptography`` encodes them by default; every other attribute we write is a UTF8String.
_PRINTABLE = frozenset({NameOID.COUNTRY_NAME.dotted_string, NameOID.SERIAL_NUMBER.dotted_string})
#: The attribute names RFC 4514 3 knows (the others are written as dotted OIDs).
_RFC4514_NAMES = {
    NameOID.COMMON_NAME.dotted_string: "CN",
    NameOID.LOCALITY_NAME.dotted_string: "L",
    NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "ST",
    NameOID.ORGANIZATION_NAME.dotted_string: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "OU",
    NameOID.COUNTRY_NAME.dotted_string: "C",
    NameOID.STREET_ADDRESS.dotted_string: "STREET",
    NameOID.DOMAIN_COMPONENT.dotted_string: "DC",
    NameOID.USER_ID.dotted_string: "UID",
}
#: RFC 4514 2.4: characters escaped with a backslash anywhere in a value.
_RFC4514_ESCAPE = str.maketrans({c: "\\" + c for c in '\\"+,;<>'} | {"\x00": "\\00"})


@functools.lru_cache(maxsize=64)
def _attribute_type_der(oid: x509.ObjectIdentifier) -> tuple[bytes, int]:
    """The DER of an attribute type and the string tag its values get."""
    return der.oid(oid), 0x13 if oid.dotted_string in _PRINTABLE else 0x0C


def _rdn_der(oid: x509.ObjectIdentifier, value: str) -> bytes:
    """RelativeDistinguishedName ::= SET { AttributeTypeAndValue } of one attribute."""
    type_der, tag = _attribute_type_der(oid)
    return der.tlv(0x31, der.tlv(0x30, type_der + der.tlv(tag, value.encode())))


def _rfc4514_value(value: str) -> str:
    """An attribute value as RFC 4514 2.4 writes it (as ``cryptography`` escapes it)."""
    if not value:
        return ""
    value = value.translate(_RFC4514_ESCAPE)
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


class _SubjectBase:
    kind: ClassVar[SubjectKind]

    def _attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        """The name's attributes in order, each in its own RDN."""
        raise NotImplementedError

    def alt_names(self) -> list[x509.GeneralName]:
        """The subject's alternative names, in the order its certificates carry them."""
        raise NotImplementedError

    def _cached(self, key: str, make: Callable[[], _T]) -> _T:
        # Subjects are frozen: what is derived from them is derived once.
        cached: _T | None = self.__dict__.get(key)
        if cached is None:
            cached = self.__dict__[key] = make()
        return cached

    def x509_name(self) -> x509.Name:
        """The subject distinguished name (built once per subject)."""
        return self._cached(
            "_name", lambda: x509.Name([_rdn(oid, v) for oid, v in self._attributes()])
        )

    def name_der(self) -> bytes:
        """The DER of :meth:`x509_name`, written without building it (what a CA puts in the
        certificate; the same bytes as ``x509_name().public_bytes()``)."""
        return self._cached(
            "_name_der",
            lambda: der.tlv(0x30, b"".join(_rdn_der(oid, v) for oid, v in self._attributes())),
        )

    def alt_names_der(self) -> bytes:
        """The DER of the subjectAltName extension of :meth:`alt_names`, empty when there are
        none (written once per subject, the same bytes as ``CertificateBuilder`` writes)."""
        return self._cached(
            "_alt_names_der",
            lambda: der.subject_alt_name_extension(names) if (names := self.alt_names()) else b"",
        )

    @property
    def dn(self) -> str:
        """The subject distinguished name as an RFC 4514 string (the same string as
        ``x509_name().rfc4514_string()``)."""
        return self._cached(
            "_dn",
            lambda: ",".join(
                f"{_RFC4514_NAMES.get(oid.dotted_string, oid.dotted_string)}={_rfc4514_value(v)}"
                for oid, v in reversed(self._attributes())
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        for key, value in vars(self).items():
            if key.startswith("_"):
                continue
            if isinstance(value, frozenset):
                data[key] = sorted(str(v) for v in value)
            elif isinstance(value, tuple):
                data[key] = list(value)
            elif value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class OrganizationSubject(_SubjectBase):
    """A legal person (ETSI EN 319 412-3)."""

    kind: ClassVar[SubjectKind] = SubjectKind.ORGANIZATION
    name: str
    country: str
    identifier: str
    locality: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text("organization name", self.name))
        _country(self.country)
        _org_identifier(self.identifier)
        if self.locality is not None:
            object.__setattr__(self, "locality", _text("locality", self.locality, limit=128))

    @property
    def display_name(self) -> str:
        return self.name

    def _attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        attrs = [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.name),
            (oids.ID_AT_ORGANIZATION_IDENTIFIER, self.identifier),
        ]
        if self.locality:
            attrs.append((NameOID.LOCALITY_NAME, self.locality))
        attrs.append((NameOID.COMMON_NAME, _common_name(self.name)))
        return attrs

    def alt_names(self) -> list[x509.GeneralName]:
        return []


@dataclass(frozen=True)
class PersonSubject(_SubjectBase):
    """A natural person associated with an organization (ETSI EN 319 412-2)."""

    kind: ClassVar[SubjectKind] = SubjectKind.PERSON
    given_name: str
    surname: str
    country: str
    organization: str
    organization_identifier: str | None = None
    email: str | None = None
    #: ETSI EN 319 412-1 semantic identifier such as ``PNODE-4711`` or an employee number.
    serial_number: str | None = None
    roles: frozenset[Role] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "given_name", _text("given name", self.given_name))
        object.__setattr__(self, "surname", _text("surname", self.surname))
        _country(self.country)
        object.__setattr__(self, "organization", _text("organization", self.organization))
        if self.organization_identifier is not None:
            _org_identifier(self.organization_identifier)
        if self.email is not None and not _EMAIL.fullmatch(self.email):
            raise ProfileError(f"e-mail address {self.email!r} is not valid")
        if self.serial_number is not None:
            object.__setattr__(
                self, "serial_number", _serial("person serial number", self.serial_number)
            )
        object.__setattr__(self, "roles", frozenset(Role(r) for r in self.roles))

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.surname}"

    def _attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        attrs = [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.organization),
        ]
        if self.organization_identifier:
            attrs.append((oids.ID_AT_ORGANIZATION_IDENTIFIER, self.organization_identifier))
        attrs += [
            (NameOID.GIVEN_NAME, self.given_name),
            (NameOID.SURNAME, self.surname),
        ]
        if self.serial_number:
            attrs.append((NameOID.SERIAL_NUMBER, self.serial_number))
        if self.roles:
            # Human-readable echo of the roles; the authoritative form is the role policy OID.
            title = ", ".join(sorted(r.value for r in self.roles))
            attrs.append((NameOID.TITLE, title[:_UB_NAME]))
        attrs.append((NameOID.COMMON_NAME, _common_name(self.display_name)))
        return attrs

    def alt_names(self) -> list[x509.GeneralName]:
        return [x509.RFC822Name(self.email)] if self.email else []


@functools.lru_cache(maxsize=1024)
def _model_slug(manufacturer: str, model: str) -> str:
    """Manufacturer and model as a URN segment (a batch repeats them)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", f"{manufacturer}:{model}").strip("-")


@functools.lru_cache(maxsize=1024)
def hardware_type_oid(manufacturer: str, model: str) -> x509.ObjectIdentifier:
    """The RFC 4108 hwType OID of a machine model: stable, derived from its names."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"trustbridge:hw:{manufacturer}\x00{model}")
    return x509.ObjectIdentifier(f"{oids.ARC_HARDWARE_TYPES}.{digest.int}")


@functools.lru_cache(maxsize=1024)
def _hw_type_der(manufacturer: str, model: str) -> bytes:
    return der.oid(hardware_type_oid(manufacturer, model))


def hardware_module_name(manufacturer: str, model: str, serial_number: str) -> bytes:
    """RFC 4108 HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING }."""
    content = _hw_type_der(manufacturer, model) + der.tlv(0x04, serial_number.encode())
    return der.tlv(0x30, content)


@dataclass(frozen=True)
class MachineSubject(_SubjectBase):
    """A machine or component: manufacturer, model, serial number, optional application URI."""

    kind: ClassVar[SubjectKind] = SubjectKind.MACHINE
    manufacturer: str
    model: str
    serial_number: str
    country: str
    #: An OPC UA application URI or other URI naming the device.
    application_uri: str | None = None
    dns_names: tuple[str, ...] = ()
    #: The host's IP addresses, for an OPC UA server reached by address (Part 6 6.2.2).
    ip_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "manufacturer", _text("manufacturer", self.manufacturer))
        object.__setattr__(self, "model", _text("model", self.model))
        object.__setattr__(self, "serial_number", _serial("serial number", self.serial_number))
        _country(self.country)
        if self.application_uri is not None:
            _uri("application URI", self.application_uri)
        object.__setattr__(self, "dns_names", _dns_names(tuple(self.dns_names)))
        object.__setattr__(self, "ip_addresses", _ip_addresses(tuple(self.ip_addresses)))

    @property
    def display_name(self) -> str:
        return f"{self.model} {self.serial_number}"

    @property
    def uri(self) -> str:
        if self.application_uri:
            return self.application_uri
        slug = _model_slug(self.manufacturer, self.model)
        return f"urn:trustbridge:machine:{slug}:{self.serial_number}"

    def _attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        return [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.manufacturer),
            (NameOID.SERIAL_NUMBER, self.serial_number),
            (NameOID.COMMON_NAME, _common_name(self.display_name)),
        ]

    def alt_names(self) -> list[x509.GeneralName]:
        hw = hardware_module_name(self.manufacturer, self.model, self.serial_number)
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(self.uri),
            x509.OtherName(oids.ID_ON_HARDWARE_MODULE_NAME, hw),
        ]
        names += [x509.DNSName(n) for n in self.dns_names]
        return names + _ip_names(self.ip_addresses)


@dataclass(frozen=True)
class SoftwareSubject(_SubjectBase):
    """A software process run by an organization."""

    kind: ClassVar[SubjectKind] = SubjectKind.SOFTWARE
    name: str
    version: str
    organization: str
    organization_identifier: str
    country: str
    dns_names: tuple[str, ...] = ()
    #: The host's IP addresses, for an OPC UA server reached by address (Part 6 6.2.2).
    ip_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text("software name", self.name))
        if not _VERSION.fullmatch(self.version):
            raise ProfileError(f"software version {self.version!r} is not a version string")
        object.__setattr__(self, "organization", _text("organization", self.organization))
        _org_identifier(self.organization_identifier)
        _country(self.country)
        object.__setattr__(self, "dns_names", _dns_names(tuple(self.dns_names)))
        object.__setattr__(self, "ip_addresses", _ip_addresses(tuple(self.ip_addresses)))

    @property
    def display_name(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def uri(self) -> str:
        """``urn:trustbridge:software:<operating organization id>:<name>:<version>``."""
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.name).strip("-").lower()
        return f"urn:trustbridge:software:{self.organization_identifier}:{slug}:{self.version}"

    def _attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        return [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (oids.ID_AT_ORGANIZATION_IDENTIFIER, self.organization_identifier),
            (NameOID.COMMON_NAME, _common_name(self.display_name)),
        ]

    def alt_names(self) -> list[x509.GeneralName]:
        return [
            x509.UniformResourceIdentifier(self.uri),
            *(x509.DNSName(n) for n in self.dns_names),
            *_ip_names(self.ip_addresses),
        ]


Subject = OrganizationSubject | PersonSubject | MachineSubject | SoftwareSubject

_SUBJECT_TYPES: dict[SubjectKind, type[Subject]] = {
    SubjectKind.ORGANIZATION: OrganizationSubject,
    SubjectKind.PERSON: PersonSubject,
    SubjectKind.MACHINE: MachineSubject,
    SubjectKind.SOFTWARE: SoftwareSubject,
}


def subject_from_dict(data: Mapping[str, Any]) -> Subject:
    """Rebuild a subject from :meth:`to_dict` output (or a user's YAML/JSON)."""
    values = dict(data)
    try:
        kind = SubjectKind(values.pop("kind"))
    except (KeyError, ValueError):
        raise ProfileError(f"subject has no valid kind: {data.get('kind')!r}") from None
    cls = _SUBJECT_TYPES[kind]
    if "roles" in values:
        values["roles"] = frozenset(Role.parse(r) for r in values["roles"])
    for key in ("dns_names", "ip_addresses"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        return cls(**values)
    except TypeError as exc:
        raise ProfileError(f"subject fields do not fit the {kind} profile: {exc}") from None


@dataclass(frozen=True)
class IdentityProfile:
    """What the certificates of one kind and purpose look like."""

    kind: SubjectKind
    purpose: Purpose
    key_types: frozenset[KeyType]
    key_usage: frozenset[str]
    extended_key_usage: tuple[x509.ObjectIdentifier, ...]
    default_lifetime: timedelta
    max_lifetime: timedelta
    #: May the CA generate the holder's key? Only for machines at manufacture.
    ca_generated_key: bool

    def check_key_type(self, key_type: KeyType) -> None:
        if key_type not in self.key_types:
            allowed = ", ".join(sorted(k.value for k in self.key_types))
            raise ProfileError(
                f"key type {key_type.value} is not allowed for {self.kind} {self.purpose} "
                f"certificates",
                hint=f"allowed: {allowed}",
            )

    def key_usage_extension(self, key_type: KeyType) -> x509.KeyUsage:
        usage = set(self.key_usage)
        if (
            self.purpose is Purpose.IDENTITY
            and key_type.is_rsa
            and self.kind
            in (
                SubjectKind.MACHINE,
                SubjectKind.SOFTWARE,
            )
        ):
            # An RSA machine or software identity is an OPC UA application instance
            # certificate (Part 6 6.2.2): digitalSignature, nonRepudiation, keyEncipherment,
            # dataEncipherment.
            usage |= {"content_commitment", "key_encipherment", "data_encipherment"}
        return key_usage(*usage)


_ALL_KEYS = frozenset(KeyType)
_YEAR = timedelta(days=365)

_PROFILES: dict[tuple[SubjectKind, Purpose], IdentityProfile] = {
    (SubjectKind.ORGANIZATION, Purpose.IDENTITY): IdentityProfile(
        kind=SubjectKind.ORGANIZATION,
        purpose=Purpose.IDENTITY,
        key_types=_ALL_KEYS,
        key_usage=frozenset({"digital_signature", "content_commitment"}),
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
        default_lifetime=2 * _YEAR,
        max_lifetime=3 * _YEAR,
        ca_generated_key=False,
    ),
    (SubjectKind.PERSON, Purpose.IDENTITY): IdentityProfile(
        kind=SubjectKind.PERSON,
        purpose=Purpose.IDENTITY,
        key_types=_ALL_KEYS,
        key_usage=frozenset({"digital_signature", "content_commitment"}),
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION),
        default_lifetime=2 * _YEAR,
        max_lifetime=3 * _YEAR,
        ca_generated_key=False,
    ),
    (SubjectKind.MACHINE, Purpose.IDENTITY): IdentityProfile(
        kind=SubjectKind.MACHINE,
        purpose=Purpose.IDENTITY,
        key_types=_ALL_KEYS,
        key_usage=frozenset({"digital_signature", "content_commitment"}),
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
        default_lifetime=5 * _YEAR,
        max_lifetime=20 * _YEAR,
        ca_generated_key=True,
    ),
    (SubjectKind.SOFTWARE, Purpose.IDENTITY): IdentityProfile(
        kind=SubjectKind.SOFTWARE,
        purpose=Purpose.IDENTITY,
        key_types=_ALL_KEYS,
        key_usage=frozenset({"digital_signature"}),
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
        default_lifetime=_YEAR,
        max_lifetime=2 * _YEAR,
        ca_generated_key=False,
    ),
    (SubjectKind.ORGANIZATION, Purpose.KEY_AGREEMENT): IdentityProfile(
        kind=SubjectKind.ORGANIZATION,
        purpose=Purpose.KEY_AGREEMENT,
        key_types=frozenset({KeyType.P256}),
        key_usage=frozenset({"key_agreement"}),
        extended_key_usage=(),
        default_lifetime=2 * _YEAR,
        max_lifetime=3 * _YEAR,
        ca_generated_key=False,
    ),
    (SubjectKind.SOFTWARE, Purpose.KEY_AGREEMENT): IdentityProfile(
        kind=SubjectKind.SOFTWARE,
        purpose=Purpose.KEY_AGREEMENT,
        key_types=frozenset({KeyType.P256}),
        key_usage=frozenset({"key_agreement"}),
        extended_key_usage=(),
        default_lifetime=_YEAR,
        max_lifetime=2 * _YEAR,
        ca_generated_key=False,
    ),
}


def profile_for(kind: SubjectKind, purpose: Purpose = Purpose.IDENTITY) -> IdentityProfile:
    """The profile for a kind and purpose; raises :class:`ProfileError` where none exists."""
    try:
        return _PROFILES[(kind, purpose)]
    except KeyError:
        raise ProfileError(
            f"there is no {purpose} profile for {kind} identities",
            hint="key-agreement certificates exist for organizations and software processes",
        ) from None


def roles_of(certificate: x509.Certificate) -> frozenset[Role]:
    """The roles a certificate asserts through role policy OIDs (no database needed)."""
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(
        _OID_ROLES[p.policy_identifier] for p in policies.value if p.policy_identifier in _OID_ROLES
    )


def subject_kind_of(certificate: x509.Certificate) -> SubjectKind | None:
    """The subject kind a trustbridge certificate declares, or None for foreign certificates."""
    try:
        ext = certificate.extensions.get_extension_for_oid(oids.EXT_SUBJECT_KIND)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    try:
        return SubjectKind(asn1.UTF8String.load(value.value).native)
    except (ValueError, TypeError):
        return None


@functools.cache
def subject_kind_extension(kind: SubjectKind) -> x509.UnrecognizedExtension:
    """The non-critical extension that names the subject kind."""
    return x509.UnrecognizedExtension(oids.EXT_SUBJECT_KIND, asn1.UTF8String(kind.value).dump())
