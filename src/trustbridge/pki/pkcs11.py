"""Signing keys kept in a PKCS#11 token (a hardware security module or SoftHSM2).

A key is named by a :class:`Pkcs11KeyRef`, written as an RFC 7512 URI::

    pkcs11:token=ca-token;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so

:func:`generate_key` creates a non-extractable key pair inside the token and :func:`open_signer`
finds an existing one. Both return a :class:`Pkcs11Signer`, whose ``private_key`` is an adapter
the ``cryptography`` builders sign with: the private key never leaves the token.

Each module is loaded once per process and each token gets one logged-in session, shared by all
signers of that token; every call into a module is serialised by one lock per module, since
python-pkcs11 initialises modules without locking callbacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote_to_bytes

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding, PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import (
    NoDigestInfo,
    Prehashed,
    encode_dss_signature,
)
from pkcs11 import Attribute, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import (
    DeviceRemoved,
    MultipleObjectsReturned,
    MultipleTokensReturned,
    NoSuchKey,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    TokenNotRecognised,
    UserAlreadyLoggedIn,
    UserNotLoggedIn,
    UserPinNotInitialized,
)
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from trustbridge.errors import InputError, KeyStoreError, PassphraseError, TokenUnavailableError
from trustbridge.pki.keys import EcPrivateKeyFacade, KeyType, hash_for

if TYPE_CHECKING:
    from cryptography import utils
    from pkcs11 import _pkcs11

__all__ = [
    "DEFAULT_MODULE",
    "Pkcs11KeyRef",
    "Pkcs11Signer",
    "generate_key",
    "open_signer",
]

DEFAULT_MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"
"""The module a URI without ``module-path`` names: Debian's SoftHSM2."""

# -- URIs (RFC 7512) ---------------------------------------------------------------------------

_SCHEME: Final = "pkcs11:"
# RFC 7512 2.3: pk11-res-avail and, for query values, pk11-res-avail-query. "=" is allowed in
# values, but we escape it so that a value never looks like a second attribute.
_PATH_SAFE: Final = ":[]@!$'()*+,"
_QUERY_SAFE: Final = _PATH_SAFE + "/?|"
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_ATTRIBUTES: Final = frozenset({"token", "object", "type"})
_QUERY_ATTRIBUTES: Final = frozenset({"module-path"})
_TOKEN_LABEL_MAX: Final = 32  # CK_TOKEN_INFO.label is 32 bytes, blank padded


_PIN_VALUE: Final = re.compile(r"(pin-value=)[^&]*")


def _uri_error(uri: str, problem: str) -> InputError:
    shown = _PIN_VALUE.sub(r"\1...", uri)  # never echo a PIN someone put into the URI
    return InputError(
        f"malformed PKCS#11 URI {shown!r}: {problem}",
        hint="write pkcs11:token=TOKEN;object=KEY?module-path=/path/to/module.so",
    )


def _split_attributes(uri: str, part: str, separator: str) -> dict[str, str]:
    """Percent-decoded ``name=value`` pairs of one URI part (RFC 7512 2.3)."""
    attributes: dict[str, str] = {}
    if not part:
        return attributes
    for item in part.split(separator):
        name, equals, raw = item.partition("=")
        if not equals or not name:
            raise _uri_error(uri, f"{item!r} is not a name=value attribute")
        if _BAD_PERCENT.search(raw):
            raise _uri_error(uri, f"bad percent-encoding in {item!r}")
        try:
            value = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _uri_error(uri, f"{name} is not UTF-8 after percent-decoding") from exc
        if name in attributes:
            # RFC 7512 2.3 forbids repeating a path attribute; a repeated query one is ambiguous
            raise _uri_error(uri, f"attribute {name!r} appears twice")
        attributes[name] = value
    return attributes


@dataclass(frozen=True)
class Pkcs11KeyRef:
    """Where a token key lives: the module (shared library), the token label and the key label."""

    module: str
    token: str
    label: str

    def __post_init__(self) -> None:
        if not os.path.isabs(self.module):
            raise InputError(
                f"PKCS#11 module path {self.module!r} is not absolute",
                hint="give the full path of the module, e.g. " + DEFAULT_MODULE,
            )
        if not self.token:
            raise InputError("PKCS#11 key reference without a token label")
        if len(self.token.encode("utf-8")) > _TOKEN_LABEL_MAX:
            raise InputError(
                f"PKCS#11 token label {self.token!r} is longer than {_TOKEN_LABEL_MAX} bytes"
            )
        if not self.label:
            raise InputError(f"PKCS#11 key reference for token {self.token!r} without a key label")

    @classmethod
    def parse(cls, uri: str) -> Pkcs11KeyRef:
        """Parse ``pkcs11:token=T;object=K?module-path=/path/module.so`` (RFC 7512).

        ``module-path`` defaults to :data:`DEFAULT_MODULE`; ``type``, if present, must be
        ``private``. Other attributes, and a PIN in the URI, are refused.
        """
        if not uri.startswith(_SCHEME):
            raise _uri_error(uri, "it does not start with 'pkcs11:'")
        path, _, query = uri[len(_SCHEME) :].partition("?")
        path_attributes = _split_attributes(uri, path, ";")
        query_attributes = _split_attributes(uri, query, "&")
        if "pin-value" in query_attributes or "pin-source" in query_attributes:
            raise _uri_error(uri, "a PIN does not belong in the key URI; pass it separately")
        unknown = (set(path_attributes) - _PATH_ATTRIBUTES) | (
            set(query_attributes) - _QUERY_ATTRIBUTES
        )
        if unknown:
            names = ", ".join(sorted(unknown))
            raise _uri_error(uri, f"unsupported attribute(s) {names}")
        if path_attributes.get("type", "private") != "private":
            raise _uri_error(uri, "type must be 'private' for a signing key")
        for required in ("token", "object"):
            if not path_attributes.get(required):
                raise _uri_error(uri, f"the {required} attribute is missing")
        return cls(
            module=query_attributes.get("module-path", DEFAULT_MODULE),
            token=path_attributes["token"],
            label=path_attributes["object"],
        )

    def uri(self) -> str:
        """The RFC 7512 URI of this key; :meth:`parse` reads it back unchanged."""
        token = quote(self.token, safe=_PATH_SAFE)
        label = quote(self.label, safe=_PATH_SAFE)
        module = quote(self.module, safe=_QUERY_SAFE)
        return f"{_SCHEME}token={token};object={label}?module-path={module}"

    def __str__(self) -> str:
        return self.uri()


# -- modules, tokens and sessions ----------------------------------------------------------------

# Losing one of these means the session is gone; the next open_signer starts a new one.
_SESSION_LOST: Final = (
    DeviceRemoved,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    UserNotLoggedIn,
)
# Compares PINs of later open_signer calls with the one that logged in, without keeping it.
_PIN_MAC_KEY: Final = secrets.token_bytes(32)


def _pin_mac(pin: str) -> bytes:
    """A keyed digest of ``pin``, valid for this process only."""
    return hmac.new(_PIN_MAC_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


@dataclass(eq=False)
class _Login:
    """The logged-in session of one token, shared by every signer of that token."""

    token: str
    session: pkcs11.Session
    pin_mac: bytes


@dataclass(eq=False)
class _Module:
    """A loaded PKCS#11 module, the lock that serialises calls into it and its logins."""

    path: str
    library: _pkcs11.lib
    lock: threading.RLock = field(default_factory=threading.RLock)
    logins: dict[str, _Login] = field(default_factory=dict)

    def forget(self, login: _Login) -> None:
        """Drop a session that stopped working (closing it where the module still lets us)."""
        with self.lock:
            if self.logins.get(login.token) is login:
                del self.logins[login.token]
            with contextlib.suppress(PKCS11Error):
                login.session.close()


_modules: dict[str, _Module] = {}
_modules_lock = threading.Lock()


def _load_module(path: str) -> _Module:
    """The module at ``path``, loaded and initialised once per process.

    Keyed by the resolved path: loading one library under two names (a symlink and its target)
    makes the second ``C_Initialize`` fail with CKR_CRYPTOKI_ALREADY_INITIALIZED.
    """
    real = os.path.realpath(path)
    with _modules_lock:
        module = _modules.get(real)
        if module is not None:
            return module
        if not os.path.isfile(real):
            raise TokenUnavailableError(
                f"PKCS#11 module {path} does not exist",
                hint="install the module (for SoftHSM2: apt install softhsm2) or fix module-path",
            )
        try:
            library = pkcs11.lib(real)
        except PKCS11Error as exc:
            raise TokenUnavailableError(
                f"cannot load PKCS#11 module {path}: {exc}",
                hint="check that the file is a PKCS#11 module for this architecture",
            ) from exc
        module = _Module(path=real, library=library)
        _modules[real] = module
        return module


def _token_unavailable(ref: Pkcs11KeyRef, problem: str) -> TokenUnavailableError:
    return TokenUnavailableError(
        f"PKCS#11 token {ref.token!r} {problem} in module {ref.module}",
        hint=(
            "list the tokens with `softhsm2-util --show-slots` or `p11tool --list-tokens`; "
            "a token initialised after the module was loaded appears only after a restart"
        ),
    )


def _login(module: _Module, ref: Pkcs11KeyRef, pin: str) -> _Login:
    """The logged-in session for ``ref.token`` in ``module``, checking ``pin``.

    Call with the module lock held. PKCS#11 login state belongs to the whole process, so a
    second ``C_Login`` fails with CKR_USER_ALREADY_LOGGED_IN whatever the PIN: later callers
    are checked against a keyed digest of the PIN that logged in.
    """
    if not pin:
        raise PassphraseError(
            f"no PIN given for token {ref.token!r}",
            hint="set the token PIN in the home configuration or the environment",
        )
    login = module.logins.get(ref.token)
    if login is not None:
        if not hmac.compare_digest(login.pin_mac, _pin_mac(pin)):
            raise PassphraseError(f"wrong PIN for token {ref.token!r}")
        return login
    try:
        token = module.library.get_token(token_label=ref.token)
    except NoSuchToken as exc:
        raise _token_unavailable(ref, "was not found") from exc
    except MultipleTokensReturned as exc:
        raise _token_unavailable(ref, "is ambiguous: several tokens carry that label") from exc
    except (TokenNotPresent, TokenNotRecognised, DeviceRemoved) as exc:
        raise _token_unavailable(ref, "is not present") from exc
    try:
        session = token.open(rw=True, user_pin=pin)
    except (PinIncorrect, PinInvalid, PinLenRange) as exc:
        raise PassphraseError(f"wrong PIN for token {ref.token!r}") from exc
    except (PinLocked, PinExpired) as exc:
        raise PassphraseError(
            f"the user PIN of token {ref.token!r} is locked or expired",
            hint="ask the security officer of the token to reset the user PIN",
        ) from exc
    except UserPinNotInitialized as exc:
        raise KeyStoreError(
            f"token {ref.token!r} has no user PIN yet",
            hint="initialise the user PIN (softhsm2-util --init-token sets both PINs)",
        ) from exc
    except UserAlreadyLoggedIn as exc:
        raise KeyStoreError(
            f"token {ref.token!r} is already logged in by other code in this process, "
            "so the PIN cannot be checked",
            hint="open PKCS#11 keys only through trustbridge.pki.pkcs11",
        ) from exc
    except _SESSION_LOST as exc:
        raise _token_unavailable(ref, "went away while logging in") from exc
    except PKCS11Error as exc:
        raise KeyStoreError(f"cannot log in to token {ref.token!r}: {exc!r}") from exc
    login = _Login(token=ref.token, session=session, pin_mac=_pin_mac(pin))
    module.logins[ref.token] = login
    return login


# -- the adapters the cryptography builders sign with ------------------------------------------

_EC_CURVES: Final[dict[KeyType, ec.EllipticCurve]] = {
    KeyType.P256: ec.SECP256R1(),
    KeyType.P384: ec.SECP384R1(),
}
_EC_PARAMS: Final[dict[bytes, KeyType]] = {
    encode_named_curve_parameters("secp256r1"): KeyType.P256,
    encode_named_curve_parameters("secp384r1"): KeyType.P384,
}
_RSA_BITS: Final[dict[int, KeyType]] = {2048: KeyType.RSA2048, 3072: KeyType.RSA3072}
_HASHES: Final = frozenset({"sha256", "sha384", "sha512"})
_RSA_PKCS1_MECHANISMS: Final[dict[str, Mechanism]] = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# RFC 8017 9.2 note 1: DER of DigestInfo up to the digest, for CKM_RSA_PKCS over a prehash
_DIGEST_INFO_PREFIXES: Final[dict[str, bytes]] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


class _TokenKey:
    """A private key handle inside a token, signing under the module lock."""

    def __init__(
        self, *, module: _Module, login: _Login, handle: SignMixin, description: str
    ) -> None:
        self._module = module
        self._login = login
        self._handle = handle
        self.description = description

    def sign(self, data: bytes, mechanism: Mechanism) -> bytes:
        """Sign ``data`` with ``mechanism`` inside the token."""
        with self._module.lock:
            try:
                return self._handle.sign(data, mechanism=mechanism)
            except _SESSION_LOST as exc:
                self._module.forget(self._login)
                raise TokenUnavailableError(
                    f"lost the session to the token of {self.description}",
                    hint="check that the token is present and open the key again",
                ) from exc
            except PKCS11Error as exc:
                raise KeyStoreError(
                    f"the token refused to sign with {self.description} ({mechanism.name}): {exc!r}"
                ) from exc

    def refuse_export(self) -> KeyStoreError:
        return KeyStoreError(
            f"the private key {self.description} lives in a PKCS#11 token and cannot be exported",
            hint="use the signer; the token keeps the key non-extractable",
        )

    def refuse(self, operation: str) -> KeyStoreError:
        return KeyStoreError(f"{operation} is not supported by token key {self.description}")


def _hash_name(algorithm: hashes.HashAlgorithm, key: _TokenKey) -> str:
    """The name of ``algorithm`` if token keys may sign with it (the SHA-2 family)."""
    if algorithm.name not in _HASHES:
        raise KeyStoreError(
            f"hash {algorithm.name} is not supported for token key {key.description}",
            hint="use SHA-256, SHA-384 or SHA-512",
        )
    return algorithm.name


def _prehash_algorithm(algorithm: Prehashed) -> hashes.HashAlgorithm:
    # Prehashed has no public getter for its hash; cryptography's own backends read this too
    return algorithm._algorithm


def _digest(
    data: utils.Buffer, algorithm: Prehashed | hashes.HashAlgorithm, key: _TokenKey
) -> bytes:
    """The message digest to sign: computed here, or ``data`` itself when prehashed."""
    if isinstance(algorithm, Prehashed):
        name = _hash_name(_prehash_algorithm(algorithm), key)
        if len(data) != algorithm.digest_size:
            raise KeyStoreError(f"prehashed data of {len(data)} bytes does not fit {name}")
        return bytes(data)
    _hash_name(algorithm, key)
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


class _TokenEcPrivateKey(EcPrivateKeyFacade):
    """An EC private key in a token, for the ``cryptography`` builders.

    SoftHSM2 (like many tokens) offers raw CKM_ECDSA only: the digest is computed here and the
    token's r‖s is converted to the DER ``Ecdsa-Sig-Value`` X.509 expects (RFC 3279 2.2.3).
    """

    def __init__(self, key: _TokenKey, public: ec.EllipticCurvePublicKey) -> None:
        super().__init__(public)
        self._key = key

    def sign(
        self, data: utils.Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise self._key.refuse(f"signature algorithm {type(signature_algorithm).__name__}")
        if signature_algorithm.deterministic_signing:
            raise self._key.refuse("deterministic ECDSA (RFC 6979)")
        digest = _digest(data, signature_algorithm.algorithm, self._key)
        raw = self._key.sign(digest, Mechanism.ECDSA)
        # PKCS#11 2.40 curr 2.3.1: the signature is r ‖ s, each as long as the group order
        size = (self.key_size + 7) // 8
        if len(raw) != 2 * size:
            raise KeyStoreError(
                f"token returned an ECDSA signature of {len(raw)} bytes for "
                f"{self._key.description}; expected {2 * size}"
            )
        r = int.from_bytes(raw[:size], "big")
        s = int.from_bytes(raw[size:], "big")
        return encode_dss_signature(r, s)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise self._key.refuse("ECDH key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise self._key.refuse_export()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        raise self._key.refuse_export()

    def __repr__(self) -> str:
        return f"<_TokenEcPrivateKey {self._key.description}>"


class _TokenRsaPrivateKey(rsa.RSAPrivateKey):
    """An RSA private key in a token, for the ``cryptography`` builders (PKCS#1 v1.5 only)."""

    def __init__(self, key: _TokenKey, public: rsa.RSAPublicKey) -> None:
        self._key = key
        self._public = public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding, PKCS1v15):
            raise self._key.refuse(f"RSA padding {padding.name}")
        if isinstance(algorithm, NoDigestInfo):
            return self._key.sign(bytes(data), Mechanism.RSA_PKCS)
        if isinstance(algorithm, Prehashed):
            digest = _digest(data, algorithm, self._key)
            prefix = _DIGEST_INFO_PREFIXES[_prehash_algorithm(algorithm).name]
            return self._key.sign(prefix + digest, Mechanism.RSA_PKCS)
        mechanism = _RSA_PKCS1_MECHANISMS[_hash_name(algorithm, self._key)]
        return self._key.sign(bytes(data), mechanism)

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        raise self._key.refuse("decryption")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise self._key.refuse_export()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        raise self._key.refuse_export()

    def __copy__(self) -> _TokenRsaPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _TokenRsaPrivateKey:
        return self

    def __repr__(self) -> str:
        return f"<_TokenRsaPrivateKey {self._key.description}>"


# -- signers -----------------------------------------------------------------------------------


class Pkcs11Signer:
    """A :class:`~trustbridge.pki.signers.Signer` whose key lives in a PKCS#11 token.

    Made by :func:`generate_key` and :func:`open_signer`. Signers of one token share its
    logged-in session; signing is serialised per module and safe from several threads.
    """

    __slots__ = ("_key_type", "_private_key", "_public_key", "_ref")

    def __init__(
        self,
        ref: Pkcs11KeyRef,
        key_type: KeyType,
        private_key: _TokenEcPrivateKey | _TokenRsaPrivateKey,
    ) -> None:
        self._ref = ref
        self._key_type = key_type
        self._private_key = private_key
        self._public_key = private_key.public_key()

    @property
    def ref(self) -> Pkcs11KeyRef:
        """Where the key lives."""
        return self._ref

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    @property
    def private_key(self) -> _TokenEcPrivateKey | _TokenRsaPrivateKey:
        """An adapter that signs inside the token; it refuses to export the key."""
        return self._private_key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """The public key, as read from the token."""
        return self._public_key

    @property
    def description(self) -> str:
        """The key's PKCS#11 URI (without any PIN)."""
        return self._ref.uri()

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.description!r}, {self._key_type.value})"


def _ec_public_key(point: bytes, key_type: KeyType) -> ec.EllipticCurvePublicKey:
    """The public key from CKA_EC_POINT: DER OCTET STRING per PKCS#11, raw on some tokens."""
    curve = _EC_CURVES[key_type]
    raw_length = 1 + 2 * ((curve.key_size + 7) // 8)
    # an OCTET STRING around an uncompressed P-256/P-384 point has a one-byte length
    if len(point) == raw_length + 2 and point[:2] == bytes((0x04, raw_length)):
        point = point[2:]
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _public_key(
    public: pkcs11.PublicKey, ref: Pkcs11KeyRef
) -> tuple[KeyType, ec.EllipticCurvePublicKey | rsa.RSAPublicKey]:
    """The key type and the ``cryptography`` public key of a token public-key object."""
    where = f"key {ref.label!r} in token {ref.token!r}"
    if public.key_type is P11KeyType.EC:
        key_type = _EC_PARAMS.get(bytes(public[Attribute.EC_PARAMS]))
        if key_type is None:
            raise KeyStoreError(f"{where} is on an unsupported curve (use P-256 or P-384)")
        try:
            return key_type, _ec_public_key(bytes(public[Attribute.EC_POINT]), key_type)
        except ValueError as exc:
            raise KeyStoreError(f"{where} has an unreadable EC point: {exc}") from exc
    if public.key_type is P11KeyType.RSA:
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        rsa_type = _RSA_BITS.get(modulus.bit_length())
        if rsa_type is None:
            raise KeyStoreError(
                f"{where} has an unsupported RSA size of {modulus.bit_length()} bits "
                "(use 2048 or 3072)"
            )
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa_type, rsa.RSAPublicNumbers(exponent, modulus).public_key()
    raise KeyStoreError(f"{where} has unsupported key type {public.key_type.name}")


_PROBE: Final = b"trustbridge PKCS#11 pairwise consistency check"


def _make_signer(
    ref: Pkcs11KeyRef,
    module: _Module,
    login: _Login,
    private: pkcs11.Key,
    public: pkcs11.Key,
) -> Pkcs11Signer:
    """A signer over a private/public key object pair, after a signature test of the pair."""
    if not isinstance(private, SignMixin) or not private[Attribute.SIGN]:
        raise KeyStoreError(
            f"private key {ref.label!r} in token {ref.token!r} is not allowed to sign"
        )
    if not isinstance(public, pkcs11.PublicKey):
        raise KeyStoreError(f"key {ref.label!r} in token {ref.token!r} has no public key object")
    key_type, public_key = _public_key(public, ref)
    token_key = _TokenKey(module=module, login=login, handle=private, description=ref.uri())
    adapter: _TokenEcPrivateKey | _TokenRsaPrivateKey
    algorithm = hash_for(key_type)
    assert algorithm is not None  # Ed25519 keys do not reach a token
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            adapter = _TokenEcPrivateKey(token_key, public_key)
            public_key.verify(
                adapter.sign(_PROBE, ec.ECDSA(algorithm)), _PROBE, ec.ECDSA(algorithm)
            )
        else:
            adapter = _TokenRsaPrivateKey(token_key, public_key)
            public_key.verify(
                adapter.sign(_PROBE, PKCS1v15(), algorithm),
                _PROBE,
                PKCS1v15(),
                algorithm,
            )
    except InvalidSignature as exc:
        raise KeyStoreError(
            f"the private and public key objects labelled {ref.label!r} in token "
            f"{ref.token!r} do not belong together",
            hint="give each key pair its own label",
        ) from exc
    return Pkcs11Signer(ref, key_type, adapter)


def _find_pair(session: pkcs11.Session, ref: Pkcs11KeyRef) -> tuple[pkcs11.Key, pkcs11.Key]:
    """The private key labelled ``ref.label`` and its public key (matched by CKA_ID if set)."""
    where = f"token {ref.token!r} (module {ref.module})"
    try:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=ref.label)
    except NoSuchKey as exc:
        raise KeyStoreError(
            f"no private key labelled {ref.label!r} in {where}",
            hint="check the object label in the key URI, or generate the key first",
        ) from exc
    except MultipleObjectsReturned as exc:
        raise KeyStoreError(f"several private keys are labelled {ref.label!r} in {where}") from exc
    key_id = bytes(private[Attribute.ID])
    try:
        if key_id:
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id)
        else:
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=ref.label)
    except NoSuchKey as exc:
        raise KeyStoreError(
            f"private key {ref.label!r} in {where} has no public key object next to it",
            hint="store the public key in the token with the same CKA_ID",
        ) from exc
    except MultipleObjectsReturned as exc:
        raise KeyStoreError(
            f"several public keys match private key {ref.label!r} in {where}"
        ) from exc
    return private, public


def open_signer(ref: Pkcs11KeyRef, pin: str) -> Pkcs11Signer:
    """A signer over the existing private key ``ref.label`` in token ``ref.token``.

    Raises :class:`TokenUnavailableError` for a missing module or token,
    :class:`PassphraseError` for a wrong PIN and :class:`KeyStoreError` for a missing key.
    """
    module = _load_module(ref.module)
    with module.lock:
        login = _login(module, ref, pin)
        try:
            private, public = _find_pair(login.session, ref)
            return _make_signer(ref, module, login, private, public)
        except _SESSION_LOST as exc:
            module.forget(login)
            raise _token_unavailable(ref, "went away while looking up the key") from exc
        except PKCS11Error as exc:
            raise KeyStoreError(f"cannot read key {ref.uri()}: {exc!r}") from exc


def _label_taken(session: pkcs11.Session, label: str) -> bool:
    """Whether a private or public key object carries ``label``."""
    for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
        # consume the search fully, so C_FindObjectsFinal runs before the next operation
        if list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})):
            return True
    return False


def generate_key(ref: Pkcs11KeyRef, key_type: KeyType, pin: str) -> Pkcs11Signer:
    """Generate a key pair labelled ``ref.label`` inside token ``ref.token``.

    The private key is token-resident, sensitive, non-extractable and may only sign. Refuses
    Ed25519 (not offered by PKCS#11 2.40 tokens) and a label that is already in use.
    """
    if key_type is KeyType.ED25519:
        raise KeyStoreError(
            "Ed25519 keys are not supported in PKCS#11 tokens",
            hint="use p256, p384, rsa2048 or rsa3072 for a token key",
        )
    module = _load_module(ref.module)
    with module.lock:
        login = _login(module, ref, pin)
        session = login.session
        try:
            if _label_taken(session, ref.label):
                raise KeyStoreError(
                    f"a key labelled {ref.label!r} exists already in token {ref.token!r}; "
                    "refusing to overwrite it",
                    hint="choose another label",
                )
            key_id = secrets.token_bytes(16)
            private_template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
                Attribute.DERIVE: False,
            }
            public_template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.VERIFY: True,
                Attribute.ENCRYPT: False,
                Attribute.WRAP: False,
            }
            capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY
            if key_type.is_ec:
                curve = "secp256r1" if key_type is KeyType.P256 else "secp384r1"
                parameters = session.create_domain_parameters(
                    P11KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)},
                    local=True,
                )
                public, private = parameters.generate_keypair(
                    id=key_id,
                    label=ref.label,
                    store=True,
                    capabilities=capabilities,
                    public_template=public_template,
                    private_template=private_template,
                )
            else:
                bits = 2048 if key_type is KeyType.RSA2048 else 3072
                public, private = session.generate_keypair(
                    P11KeyType.RSA,
                    bits,
                    id=key_id,
                    label=ref.label,
                    store=True,
                    capabilities=capabilities,
                    public_template=public_template,
                    private_template=private_template,
                )
            return _make_signer(ref, module, login, private, public)
        except _SESSION_LOST as exc:
            module.forget(login)
            raise _token_unavailable(ref, "went away while generating the key") from exc
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"token {ref.token!r} could not generate a {key_type.value} key: {exc!r}"
            ) from exc
