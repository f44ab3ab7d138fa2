"""The few DER encodings a CA needs to put an end-entity certificate together itself.

``cryptography``'s ``CertificateBuilder`` turns every Python extension object into DER again
for every certificate. A CA issues many certificates whose fields are the same but for the
serial, the subject, the key and its identifier, so
:class:`~trustbridge.pki.ca.CertificateAuthority` encodes the shared part once and writes the
rest with these functions (X.690 DER; RFC 5280 4.1).
What it writes is compared with ``CertificateBuilder``'s output for the same input before it is
used (see ``CertificateAuthority._sign``), and the tests compare both on many inputs.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cryptography import x509

from trustbridge.errors import InputError
from trustbridge.pki.keys import KeyType

__all__ = [
    "SIGNATURE_ALGORITHMS",
    "certificate",
    "extension",
    "integer",
    "key_identifier_extension",
    "length",
    "sequence",
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


def length(size: int) -> bytes:
    """The DER length octets of ``size`` content bytes (X.690 8.1.3, definite form)."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One element: a one-octet ``tag``, the length, the ``content``."""
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded elements."""
    return tlv(_SEQUENCE, b"".join(parts))


def integer(value: int) -> bytes:
    """A non-negative INTEGER in its shortest two's-complement form (X.690 8.3)."""
    if value < 0:
        raise InputError(f"a certificate serial must not be negative: {value}")
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def time(value: datetime) -> bytes:
    """A certificate Time (RFC 5280 4.1.2.5): UTCTime for 1950 to 2049, GeneralizedTime
    otherwise, in UTC to the second (fractions dropped, as CertificateBuilder drops them)."""
    if value.tzinfo is None:
        raise InputError(f"certificate time {value} has no time zone")
    value = value.astimezone(UTC)
    if 1950 <= value.year < 2050:
        return tlv(0x17, value.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(0x18, f"{value.year:04d}{value:%m%d%H%M%S}Z".encode("ascii"))


def extension(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    (the BOOLEAN only when true: DER leaves a default value out)."""
    body = _oid(ext.oid.dotted_string)
    if ext.critical:
        body += b"\x01\x01\xff"
    return sequence(body, tlv(0x04, ext.value.public_bytes()))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    first, rest = arcs[0] * 40 + arcs[1], arcs[2:]
    out = bytearray()
    for arc in (first, *rest):
        chunk = [arc & 0x7F]
        remaining = arc >> 7
        while remaining:
            chunk.append(0x80 | (remaining & 0x7F))
            remaining >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


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
