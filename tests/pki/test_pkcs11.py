"""PKCS#11 key storage against a real SoftHSM2 token, checked with cryptography and openssl."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from tests.softhsm import SoftHsmToken
from trustbridge.errors import InputError, KeyStoreError, PassphraseError, TokenUnavailableError
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.pkcs11 import (
    DEFAULT_MODULE,
    Pkcs11KeyRef,
    Pkcs11Signer,
    generate_key,
    open_signer,
)
from trustbridge.pki.profiles import key_usage
from trustbridge.pki.signers import Signer, sign_bytes

pytestmark = pytest.mark.softhsm

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2035, 1, 1, tzinfo=UTC)

EXPECTED_SIGNATURE_OID = {
    KeyType.P256: SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    KeyType.P384: SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    KeyType.RSA2048: SignatureAlgorithmOID.RSA_WITH_SHA256,
}


def _ref(token: SoftHsmToken, label: str) -> Pkcs11KeyRef:
    return Pkcs11KeyRef(module=token.module, token=token.label, label=label)


def _hash(signer: Signer) -> hashes.SHA256 | hashes.SHA384:
    algorithm = hash_for(signer.key_type)
    assert algorithm is not None
    return algorithm


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _self_signed(signer: Signer, common_name: str) -> x509.Certificate:
    """A self-signed CA certificate, signed by the token through the cryptography builder."""
    return self_signed_certificate(
        signer,
        _name(common_name),
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        ca=True,
        serial=0x7B1D6E,
        extensions=((key_usage("digital_signature", "key_cert_sign", "crl_sign"), True),),
    )


def _openssl_verify(cert: x509.Certificate, directory: Path) -> str:
    """``openssl verify`` of a self-signed certificate against itself, at the pinned time."""
    path = directory / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-attime", str(int(NOW.timestamp())), "-CAfile", path, path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# -- URIs --------------------------------------------------------------------------------------


def test_parse_uri_decodes_percent_escapes() -> None:
    ref = Pkcs11KeyRef.parse(
        "pkcs11:token=CA%20token;object=issuing%3Bca?module-path=/opt/hsm/lib%20p11.so"
    )
    assert ref == Pkcs11KeyRef(module="/opt/hsm/lib p11.so", token="CA token", label="issuing;ca")


def test_parse_uri_defaults_module_and_accepts_private_type() -> None:
    ref = Pkcs11KeyRef.parse("pkcs11:token=ca;object=root;type=private")
    assert ref.module == DEFAULT_MODULE == "/usr/lib/softhsm/libsofthsm2.so"
    assert (ref.token, ref.label) == ("ca", "root")


@pytest.mark.parametrize(
    ("token", "label"),
    [
        ("ca", "root"),
        ("CA token", "key;with?separators&=/%"),
        ("Zertifizierungsstelle", "Schlüssel-äöü"),
    ],
)
def test_uri_round_trips(token: str, label: str) -> None:
    ref = Pkcs11KeyRef(
        module="/usr/lib/x86_64-linux-gnu/pkcs11/p11 kit.so", token=token, label=label
    )
    uri = ref.uri()
    assert uri.startswith(f"pkcs11:token={token.replace(' ', '%20')};object=")
    assert Pkcs11KeyRef.parse(uri) == ref
    assert Pkcs11KeyRef.parse(uri).uri() == uri


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://hsm.example/ca", "does not start with 'pkcs11:'"),
        ("pkcs11:object=root", "the token attribute is missing"),
        ("pkcs11:token=ca", "the object attribute is missing"),
        ("pkcs11:token=ca;object=", "the object attribute is missing"),
        ("pkcs11:token=ca;object=root;serial=42", "unsupported attribute"),
        ("pkcs11:token=ca;object=root?pin-value=1234", "a PIN does not belong"),
        ("pkcs11:token=ca;object=ro%zzot", "bad percent-encoding"),
        ("pkcs11:token=ca;object=%ff", "not UTF-8"),
        ("pkcs11:token=ca;token=other;object=root", "appears twice"),
        ("pkcs11:token=ca;object=root;type=public", "type must be 'private'"),
        ("pkcs11:token=ca;root", "is not a name=value attribute"),
    ],
)
def test_malformed_uri_raises_input_error(uri: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        Pkcs11KeyRef.parse(uri)


def test_pin_in_uri_is_refused_without_echoing_it() -> None:
    with pytest.raises(InputError, match="a PIN does not belong") as raised:
        Pkcs11KeyRef.parse("pkcs11:token=ca;object=root?pin-value=s3cret-pin")
    assert "s3cret-pin" not in raised.value.diagnostics()


def test_relative_module_path_is_refused() -> None:
    with pytest.raises(InputError, match="is not absolute"):
        Pkcs11KeyRef.parse("pkcs11:token=ca;object=root?module-path=libsofthsm2.so")


# -- generating and signing --------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.P384, KeyType.RSA2048])
def test_generated_key_signs_certificate_csr_and_crl(
    softhsm_token: SoftHsmToken, key_type: KeyType, tmp_path: Path
) -> None:
    ref = _ref(softhsm_token, f"ca-{key_type.value}")
    signer = generate_key(ref, key_type, softhsm_token.pin)
    assert signer.key_type is key_type
    assert signer.description == ref.uri()

    cert = _self_signed(signer, f"Token CA {key_type.value}")
    cert.verify_directly_issued_by(cert)
    assert cert.signature_algorithm_oid == EXPECTED_SIGNATURE_OID[key_type]
    assert cert.public_key() == signer.public_key
    assert "OK" in _openssl_verify(cert, tmp_path)

    # open the same key again by its URI, as the CLI does, and sign with the new signer
    reopened = open_signer(Pkcs11KeyRef.parse(ref.uri()), softhsm_token.pin)
    assert reopened.key_type is key_type
    assert reopened.public_key == signer.public_key
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("request"))
        .sign(reopened.private_key, _hash(reopened))
    )
    assert csr.is_signature_valid
    assert csr.public_key() == signer.public_key
    csr_path = tmp_path / "request.pem"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    checked = subprocess.run(
        ["openssl", "req", "-verify", "-noout", "-in", csr_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stdout + checked.stderr

    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert.subject)
        .last_update(NOW)
        .next_update(NOT_AFTER)
        .sign(reopened.private_key, _hash(reopened))
    )
    assert crl.is_signature_valid(reopened.public_key)


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.RSA2048])
def test_sign_bytes_verifies_with_public_key(
    softhsm_token: SoftHsmToken, key_type: KeyType
) -> None:
    signer = generate_key(_ref(softhsm_token, f"raw-{key_type.value}"), key_type, softhsm_token.pin)
    data = b"trustbridge checkpoint 17"
    signature = sign_bytes(signer, data)
    public = signer.public_key

    def verify(message: bytes) -> None:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    verify(data)
    with pytest.raises(InvalidSignature):
        verify(data + b"!")


def test_ecdsa_prehashed_digest_is_signed(softhsm_token: SoftHsmToken) -> None:
    signer = generate_key(_ref(softhsm_token, "prehashed-p384"), KeyType.P384, softhsm_token.pin)
    digest = hashes.Hash(hashes.SHA384())
    digest.update(b"timestamp request")
    value = digest.finalize()
    key = signer.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(value, ec.ECDSA(Prehashed(hashes.SHA384())))
    public = signer.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"timestamp request", ec.ECDSA(hashes.SHA384()))


def test_signers_of_one_token_sign_concurrently(softhsm_token: SoftHsmToken) -> None:
    first = generate_key(_ref(softhsm_token, "concurrent-a"), KeyType.P256, softhsm_token.pin)
    second = open_signer(_ref(softhsm_token, "concurrent-a"), softhsm_token.pin)
    messages = [f"message {n}".encode() for n in range(40)]

    def sign(n: int) -> bytes:
        return sign_bytes(first if n % 2 else second, messages[n])

    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(sign, range(len(messages))))
    public = first.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for message, signature in zip(messages, signatures, strict=True):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))


# -- keys stay in the token --------------------------------------------------------------------


def test_private_key_cannot_be_exported(softhsm_token: SoftHsmToken) -> None:
    signer = generate_key(_ref(softhsm_token, "no-export"), KeyType.P256, softhsm_token.pin)
    key = signer.private_key
    with pytest.raises(KeyStoreError, match="cannot be exported"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(KeyStoreError, match="cannot be exported"):
        key.private_numbers()


def test_generated_key_is_sensitive_and_never_extractable(softhsm_token: SoftHsmToken) -> None:
    signer = generate_key(_ref(softhsm_token, "attributes"), KeyType.RSA2048, softhsm_token.pin)
    # read the attributes through python-pkcs11 directly: the process is logged in already
    library = pkcs11.lib(os.path.realpath(signer.ref.module))
    token = library.get_token(token_label=softhsm_token.label)
    with token.open() as session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="attributes")
        assert private[pkcs11.Attribute.TOKEN] is True
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
        assert private[pkcs11.Attribute.DECRYPT] is False


def test_rsa_pss_is_refused(softhsm_token: SoftHsmToken) -> None:
    signer = generate_key(_ref(softhsm_token, "pss"), KeyType.RSA2048, softhsm_token.pin)
    key = signer.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    with pytest.raises(KeyStoreError, match="RSA padding EMSA-PSS is not supported"):
        key.sign(b"data", pss, hashes.SHA256())


# -- errors ------------------------------------------------------------------------------------


def test_ed25519_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(KeyStoreError, match="Ed25519 keys are not supported in PKCS#11 tokens"):
        generate_key(_ref(softhsm_token, "ed"), KeyType.ED25519, softhsm_token.pin)


def test_duplicate_label_is_refused(softhsm_token: SoftHsmToken) -> None:
    ref = _ref(softhsm_token, "twice")
    first = generate_key(ref, KeyType.P256, softhsm_token.pin)
    with pytest.raises(KeyStoreError, match="'twice' exists already in token 'pki-tests'"):
        generate_key(ref, KeyType.P384, softhsm_token.pin)
    # the first key is untouched
    assert open_signer(ref, softhsm_token.pin).public_key == first.public_key


def test_unknown_label_names_label_and_token(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(
        KeyStoreError, match="no private key labelled 'absent' in token 'pki-tests'"
    ):
        open_signer(_ref(softhsm_token, "absent"), softhsm_token.pin)


def test_wrong_pin_at_first_login(softhsm_fresh_token: SoftHsmToken) -> None:
    ref = _ref(softhsm_fresh_token, "any")
    with pytest.raises(PassphraseError, match="wrong PIN for token 'pki-tests-fresh'"):
        open_signer(ref, "not-the-pin")
    # the right PIN still works afterwards
    signer = generate_key(ref, KeyType.P256, softhsm_fresh_token.pin)
    assert isinstance(signer, Pkcs11Signer)


def test_wrong_pin_while_token_is_logged_in(softhsm_token: SoftHsmToken) -> None:
    ref = _ref(softhsm_token, "pin-check")
    generate_key(ref, KeyType.P256, softhsm_token.pin)
    with pytest.raises(PassphraseError, match="wrong PIN for token 'pki-tests'"):
        open_signer(ref, softhsm_token.pin + "x")
    with pytest.raises(PassphraseError, match="wrong PIN"):
        generate_key(_ref(softhsm_token, "pin-check-2"), KeyType.P256, "0000")


def test_empty_pin_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(PassphraseError, match="no PIN given for token 'pki-tests'"):
        open_signer(_ref(softhsm_token, "any"), "")


def test_unknown_token_is_unavailable(softhsm_token: SoftHsmToken) -> None:
    ref = Pkcs11KeyRef(module=softhsm_token.module, token="no-such-token", label="root")
    with pytest.raises(
        TokenUnavailableError,
        match=f"token 'no-such-token' was not found in module {softhsm_token.module}",
    ):
        open_signer(ref, softhsm_token.pin)


def test_missing_module_is_unavailable(tmp_path: Path) -> None:
    module = tmp_path / "libabsent.so"
    ref = Pkcs11KeyRef(module=str(module), token="ca", label="root")
    with pytest.raises(TokenUnavailableError, match=f"PKCS#11 module {module} does not exist"):
        open_signer(ref, "1234")


def test_file_that_is_no_module_is_unavailable(tmp_path: Path) -> None:
    module = tmp_path / "libbroken.so"
    module.write_bytes(b"not a shared object")
    ref = Pkcs11KeyRef(module=str(module), token="ca", label="root")
    with pytest.raises(TokenUnavailableError, match="cannot load PKCS#11 module"):
        generate_key(ref, KeyType.P256, "1234")
