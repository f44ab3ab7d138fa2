"""The few DER encodings trustbridge writes itself: certificates and CRLs.

``cryptography``'s builders turn every Python extension or entry object into DER again for
every certificate or CRL. A CA issues many certificates whose fields are the same but for the
serial, the subject, the key and its identifier, so
:class:`~trustbridge.pki.ca.CertificateAuthority` encodes the shared part once and writes the
rest with these functions, and :mod:`trustbridge.pki.revocation` writes CRLs of a million
entries with them (X.690 DER; RFC 5280 4.1, 5.1). What the CA writes is compared with
``CertificateBuilder``'s output for the same input before it is used (see
``CertificateAuthority._sign``); the tests compare both ways on many inputs, as they compare
CRLs with ``CertificateRevocationListBuilder``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from ipaddress import IPv4Address, IPv6Address

from cryptography import x509

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError
from trustbridge.pki.keys import KeyType

__all__ = [
    "SIGNATURE_ALGORITHMS",
    "certificate",
    "extension",
    "header",
    "integer",
    "key_identifier_extension",
    "oid",
    "sequence",
    "subject_alt_name_extension",
    "subject_public_key",
    "time",
    "tlv",
]

_SEQUENCE = 0x30

#: AlgorithmIdentifier of the signature each CA key type makes, as CertificateBuilder writes
#: them: ECDSA without parameters (RFC 5758 3.2), RSA PKCS#1 v1.5 with NULL (RFC 4055 5),
#: Ed25519 without parameters (RFC 8410 3).
SIGNATURE_ALGORITHMS: dict[KeyType, bytes] = {
    KeyType.P256: bytes.fromhex("300a06082a8648ce3d040302"),
    KeyType.P384: bytes.fromhex("300a06082a8648ce3d040303"),
    KeyType.RSA2048: bytes.fromhex("300d06092a864886f70d01010b0500"),
    KeyType.RSA3072: bytes.fromhex("300d06092a864886f70d01010b0500"),
    KeyType.ED25519: bytes.fromhex("300506032b6570"),
}

#: Extension ::= SEQUENCE { extnID id-ce-subjectKeyIdentifier, extnValue OCTET STRING
#: { KeyIdentifier (an OCTET STRING of 20 bytes) } }: everything but the 20 bytes.
_SKI_PREFIX = bytes.fromhex("301d0603551d0e04160414")


def header(tag: int, size: int) -> bytes:
    """The identifier and length octets of an element of ``size`` content bytes (X.690
    8.1.3, definite form: short below 128)."""
    if size < 0x80:
        return bytes((tag, size))
    octets = (size.bit_length() + 7) // 8
    return bytes((tag, 0x80 | octets)) + size.to_bytes(octets, "big")


def tlv(tag: int, content: bytes) -> bytes:
    """One element: a one-octet ``tag``, the length, the ``content``."""
    return header(tag, len(content)) + content


def sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded elements."""
    return tlv(_SEQUENCE, b"".join(parts))


def integer(value: int) -> bytes:
    """A non-negative INTEGER in its shortest two's-complement form (X.690 8.3)."""
    if value < 0:
        raise InputError(f"a certificate serial must not be negative: {value}")
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def time(value: datetime) -> bytes:
    """A certificate or CRL Time (RFC 5280 4.1.2.5, 5.1.2.4): UTCTime through 2049,
    GeneralizedTime from 2050; in UTC (a naive time is taken as UTC), whole seconds
    (fractions dropped, as CertificateBuilder drops them)."""
    if value.tzinfo is not UTC:
        value = ensure_utc(value)
    year = value.year
    if 1950 <= year < 2050:
        return b"\x17\x0d%02d%02d%02d%02d%02d%02dZ" % (
            year % 100,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
        )
    if year < 1950:
        raise InputError(
            f"a certificate or CRL cannot state {value:%Y-%m-%d}: its dates start in 1950"
        )
    return b"\x18\x0f%04d%02d%02d%02d%02d%02dZ" % (
        year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
    )


def extension(value: x509.ExtensionType, *, critical: bool = False) -> bytes:
    """RFC 5280 4.1: Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE,
    extnValue OCTET STRING } (the BOOLEAN only when true: DER leaves a default value out)."""
    flag = b"\x01\x01\xff" if critical else b""
    return tlv(_SEQUENCE, oid(value.oid) + flag + tlv(0x04, value.public_bytes()))


@cache
def oid(value: x509.ObjectIdentifier) -> bytes:
    """An OBJECT IDENTIFIER (X.690 8.19: the first two arcs as one, each arc base 128, the
    high bit on all octets of an arc but its last)."""
    arcs = [int(arc) for arc in value.dotted_string.split(".")]
    body = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        octets = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            octets.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(octets))
    return tlv(0x06, bytes(body))


#: GeneralName ::= CHOICE (RFC 5280 4.2.1.6): the IA5String alternatives, tagged [n]
#: IMPLICIT (cryptography's constructors accept ASCII values only).
_IA5_NAMES: dict[type[x509.GeneralName], int] = {
    x509.RFC822Name: 0x81,
    x509.DNSName: 0x82,
    x509.UniformResourceIdentifier: 0x86,
}
#: extnID id-ce-subjectAltName.
_SAN_OID = bytes.fromhex("0603551d11")


def _general_name(name: x509.GeneralName) -> bytes | None:
    """One GeneralName, or None for an alternative this writer leaves to cryptography."""
    tag = _IA5_NAMES.get(type(name))
    if tag is not None:
        text: str = name.value
        return tlv(tag, text.encode("ascii")) if text.isascii() else None
    if isinstance(name, x509.IPAddress) and isinstance(name.value, IPv4Address | IPv6Address):
        return tlv(0x87, name.value.packed)  # iPAddress [7] IMPLICIT OCTET STRING
    if isinstance(name, x509.OtherName):
        # otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }; a value
        # that is not one DER element is left to cryptography, which refuses it.
        if not _one_element(name.value):
            return None
        return tlv(0xA0, oid(name.type_id) + tlv(0xA0, name.value))
    if isinstance(name, x509.DirectoryName):
        return tlv(0xA4, name.value.public_bytes())  # directoryName [4] EXPLICIT Name
    return None


def _one_element(data: bytes) -> bool:
    """Whether ``data`` is exactly one element with a definite length."""
    try:
        return _element(data, 0)[2] == len(data)
    except InputError:
        return False


def subject_alt_name_extension(names: Sequence[x509.GeneralName]) -> bytes:
    """The subjectAltName extension (not critical: the subject name is never empty) with
    ``names`` in order, as ``CertificateBuilder`` writes it (RFC 5280 4.2.1.6)."""
    written = [_general_name(name) for name in names]
    if any(w is None for w in written):
        value = x509.SubjectAlternativeName(names).public_bytes()
    else:
        value = tlv(_SEQUENCE, b"".join(w for w in written if w is not None))
    return tlv(_SEQUENCE, _SAN_OID + tlv(0x04, value))


def _element(data: bytes, offset: int) -> tuple[int, int, int]:
    """The tag, the content's start and its end of the element at ``offset``."""
    if offset + 2 > len(data):
        raise InputError("truncated DER element")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise InputError("DER element with a bad length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    else:
        size = first
    end = start + size
    if end > len(data):
        raise InputError("truncated DER element")
    return tag, start, end


def subject_public_key(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a SubjectPublicKeyInfo (RFC 5280 4.1): what a key
    identifier of method 1 (RFC 5280 4.2.1.2) hashes, as cryptography hashes it."""
    tag, start, end = _element(spki, 0)
    if tag != _SEQUENCE or end != len(spki):
        raise InputError("not a SubjectPublicKeyInfo")
    tag, _, after = _element(spki, start)
    if tag != _SEQUENCE:
        raise InputError("not a SubjectPublicKeyInfo")
    tag, bits, stop = _element(spki, after)
    if tag != 0x03 or stop != end or bits == stop or spki[bits] != 0:
        raise InputError("not a SubjectPublicKeyInfo")
    return spki[bits + 1 : stop]


def key_identifier_extension(spki: bytes) -> bytes:
    """The subjectKeyIdentifier extension (not critical) of the key ``spki``: the SHA-1 of
    its subjectPublicKey bits (RFC 5280 4.2.1.2 method 1)."""
    digest = hashlib.sha1(subject_public_key(spki), usedforsecurity=False).digest()
    return _SKI_PREFIX + digest


def certificate(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING
    } (the signature's BIT STRING without unused bits)."""
    return sequence(tbs, algorithm, tlv(0x03, b"\x00" + signature))
