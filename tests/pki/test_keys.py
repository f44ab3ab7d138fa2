"""Key types, key generation and encrypted PKCS#8 key files."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trustbridge.errors import InputError, KeyStoreError, PassphraseError
from trustbridge.pki.keys import (
    KeyType,
    generate_private_key,
    hash_for,
    load_private_key_file,
    load_private_key_pem,
    private_key_pem,
    write_private_key_file,
)
from trustbridge.pki.signers import FileSigner, sign_bytes

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, CertificateIssuerPrivateKeyTypes]:
    """One key of every type; RSA-3072 generation is slow, so once per module."""
    return {key_type: generate_private_key(key_type) for key_type in KeyType}


@pytest.fixture(scope="module")
def p256_key(
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
) -> CertificateIssuerPrivateKeyTypes:
    return keys[KeyType.P256]


def _spki(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_every_key_type_generates_and_round_trips_through_of(
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes], key_type: KeyType
) -> None:
    key = keys[key_type]
    assert KeyType.of(key) is key_type
    assert KeyType.of(key.public_key()) is key_type


def test_generated_keys_have_the_expected_algorithms(
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
) -> None:
    p256, p384 = keys[KeyType.P256], keys[KeyType.P384]
    assert isinstance(p256, ec.EllipticCurvePrivateKey)
    assert isinstance(p256.curve, ec.SECP256R1)
    assert isinstance(p384, ec.EllipticCurvePrivateKey)
    assert isinstance(p384.curve, ec.SECP384R1)
    assert isinstance(keys[KeyType.ED25519], ed25519.Ed25519PrivateKey)
    rsa2048, rsa3072 = keys[KeyType.RSA2048], keys[KeyType.RSA3072]
    assert isinstance(rsa2048, rsa.RSAPrivateKey)
    assert rsa2048.key_size == 2048
    assert isinstance(rsa3072, rsa.RSAPrivateKey)
    assert rsa3072.key_size == 3072


def test_key_type_flags_and_hashes() -> None:
    assert {k for k in KeyType if k.is_rsa} == {KeyType.RSA2048, KeyType.RSA3072}
    assert {k for k in KeyType if k.is_ec} == {KeyType.P256, KeyType.P384}
    assert hash_for(KeyType.ED25519) is None
    p384_hash = hash_for(KeyType.P384)
    assert p384_hash is not None
    assert p384_hash.name == "sha384"
    for key_type in (KeyType.P256, KeyType.RSA2048, KeyType.RSA3072):
        algorithm = hash_for(key_type)
        assert algorithm is not None
        assert algorithm.name == "sha256"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("p256", KeyType.P256), ("P-384", KeyType.P384), (" RSA-3072 ", KeyType.RSA3072)],
)
def test_parse_accepts_names_case_and_hyphen_insensitively(text: str, expected: KeyType) -> None:
    assert KeyType.parse(text) is expected


def test_parse_rejects_unknown_names_with_the_choices() -> None:
    with pytest.raises(InputError, match="unknown key type 'dsa1024'") as info:
        KeyType.parse("dsa1024")
    assert info.value.hint is not None
    assert "p256" in info.value.hint


def test_of_rejects_unsupported_curves_and_sizes() -> None:
    with pytest.raises(InputError, match="secp521r1 is not supported"):
        KeyType.of(ec.generate_private_key(ec.SECP521R1()))
    # A weak key on purpose: quick to make, and it must not pass as one of ours.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(InputError, match="RSA key size 1024 is not supported"):
        KeyType.of(weak)
    # Asked twice: the key's class is known the second time, the answer is the same.
    for _ in range(2):
        with pytest.raises(InputError, match="secp256k1 is not supported"):
            KeyType.of(ec.generate_private_key(ec.SECP256K1()).public_key())
        with pytest.raises(InputError, match="X25519PrivateKey is not supported"):
            KeyType.of(x25519.X25519PrivateKey.generate())


@pytest.mark.parametrize("key_type", list(KeyType))
def test_encrypted_pem_round_trip(
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes], key_type: KeyType
) -> None:
    key = keys[key_type]
    data = private_key_pem(key, PASSPHRASE)
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_private_key_pem(data, PASSPHRASE, source="memory")
    assert KeyType.of(loaded) is key_type
    assert _spki(loaded) == _spki(key)


def test_unencrypted_pem_round_trip(p256_key: CertificateIssuerPrivateKeyTypes) -> None:
    data = private_key_pem(p256_key)
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _spki(load_private_key_pem(data, None, source="memory")) == _spki(p256_key)


def test_wrong_passphrase_is_a_passphrase_error(
    p256_key: CertificateIssuerPrivateKeyTypes,
) -> None:
    data = private_key_pem(p256_key, PASSPHRASE)
    with pytest.raises(PassphraseError, match=re.escape("wrong passphrase for key ca.key")):
        load_private_key_pem(data, b"not the passphrase", source="ca.key")


def test_missing_passphrase_is_a_passphrase_error_with_a_hint(
    p256_key: CertificateIssuerPrivateKeyTypes,
) -> None:
    data = private_key_pem(p256_key, PASSPHRASE)
    with pytest.raises(
        PassphraseError, match=re.escape("ca.key is encrypted and no passphrase")
    ) as info:
        load_private_key_pem(data, None, source="ca.key")
    assert "passphrase" in info.value.diagnostics()
    assert info.value.hint is not None


def test_passphrase_for_an_unencrypted_key_is_refused(
    p256_key: CertificateIssuerPrivateKeyTypes,
) -> None:
    data = private_key_pem(p256_key)
    with pytest.raises(KeyStoreError, match="not encrypted but a passphrase was given"):
        load_private_key_pem(data, PASSPHRASE, source="ca.key")


def test_garbage_is_not_a_key() -> None:
    with pytest.raises(KeyStoreError, match="not a readable PEM private key"):
        load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n", None, source="junk.pem")


def test_write_private_key_file_creates_mode_0600_and_loads_back(
    tmp_path: Path, p256_key: CertificateIssuerPrivateKeyTypes
) -> None:
    path = tmp_path / "keys" / "identity.key"
    write_private_key_file(path, p256_key, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in path.read_bytes()
    assert _spki(load_private_key_file(path, PASSPHRASE)) == _spki(p256_key)


def test_write_private_key_file_refuses_to_overwrite(
    tmp_path: Path, keys: dict[KeyType, CertificateIssuerPrivateKeyTypes]
) -> None:
    path = tmp_path / "identity.key"
    write_private_key_file(path, keys[KeyType.P256], PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="exists already; refusing to overwrite"):
        write_private_key_file(path, keys[KeyType.ED25519], PASSPHRASE)
    assert path.read_bytes() == before


def test_load_private_key_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="cannot read key file"):
        load_private_key_file(tmp_path / "absent.key", None)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_file_signer_signs_with_the_standard_scheme(
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes], key_type: KeyType
) -> None:
    from cryptography.hazmat.primitives.asymmetric import padding

    signer = FileSigner(keys[key_type], source="unit")
    assert signer.key_type is key_type
    assert signer.description == "file:unit"
    data = b"statement"
    signature = sign_bytes(signer, data)
    public_key = signer.public_key
    algorithm = hash_for(key_type)
    # Verification raises InvalidSignature if the scheme were not the documented one.
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        assert algorithm is not None
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        assert algorithm is not None
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        assert isinstance(public_key, ed25519.Ed25519PublicKey)
        public_key.verify(signature, data)
