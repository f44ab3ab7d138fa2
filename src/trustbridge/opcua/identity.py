"""An OPC UA application's own identity: its RSA key and its certificate chain, leaf first.

The leaf is a trustbridge machine or software identity with an RSA key (its profile makes it an
application instance certificate); its application URI is the URI in its subjectAltName. A node
home keeps one under ``HOME/opcua/``: ``identity.pem`` (the chain) and ``identity.key.pem``
(the key, mode 600, encrypted or not as it was installed), so that ``trustbridge --home HOME
opcua serve|read`` find it.

A session's user (:class:`UserIdentity`) is a person: a trustbridge person identity with an RSA
key, which signs the X.509 user identity token. It is the person's own key file, never kept in
the node home.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from trustbridge.errors import InputError, KeyStoreError, NotFoundError, ValidationError
from trustbridge.home.delivery import write_private
from trustbridge.opcua.certificates import (
    PeerRole,
    application_uris,
    check_instance_certificate,
    check_user_certificate,
)
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner

__all__ = ["CHAIN_FILE", "KEY_FILE", "ApplicationIdentity", "UserIdentity"]

#: Where a node home keeps its OPC UA identity (relative to the home).
CHAIN_FILE = "opcua/identity.pem"
KEY_FILE = "opcua/identity.key.pem"


@dataclass(frozen=True)
class _RsaIdentity:
    """An RSA key (behind a file signer) and its certificate chain, leaf first; what OPC UA
    signs with, as an application or as a session's user."""

    #: How an error names this kind of identity, its key, and what to do about a non-RSA key.
    _WHAT: ClassVar[str]
    _KEY: ClassVar[str]
    _HINT: ClassVar[str]

    signer: FileSigner
    chain: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        if not self.chain:
            raise InputError(f"{self._WHAT} needs its certificate")
        key = self.signer.private_key
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyStoreError(
                f"the {self._KEY} {self.signer.description} is {type(key).__name__}, not RSA",
                hint=self._HINT,
            )
        if _spki(key.public_key()) != _spki(self.certificate.public_key()):
            raise KeyStoreError(
                f"the key {self.signer.description} does not belong to the certificate "
                f"{self.subject}"
            )
        self._check_profile()

    def _check_profile(self) -> None:
        """Raise unless the certificate's profile fits this kind of identity."""
        raise NotImplementedError

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = self.signer.private_key
        assert isinstance(key, rsa.RSAPrivateKey)  # checked when made
        return key

    @classmethod
    def from_pem(
        cls, chain_pem: bytes, key_pem: bytes, *, passphrase: bytes | None, source: str
    ) -> Self:
        """From a PEM chain (leaf first) and a PEM key (encrypted with ``passphrase``)."""
        try:
            chain = tuple(x509.load_pem_x509_certificates(chain_pem))
        except ValueError as exc:
            raise InputError(f"{source}: the chain is not PEM certificates: {exc}") from None
        key = load_private_key_pem(key_pem, passphrase, source=source)
        return cls(FileSigner(key, source), chain)

    @classmethod
    def from_files(cls, chain: Path, key: Path, *, passphrase: bytes | None = None) -> Self:
        return cls.from_pem(
            _read(chain, "certificate chain"),
            _read(key, cls._KEY),
            passphrase=passphrase,
            source=str(key),
        )


@dataclass(frozen=True)
class ApplicationIdentity(_RsaIdentity):
    """An OPC UA application's RSA key (behind a file signer) and its certificate chain, leaf
    first: a machine or software identity with an application URI."""

    _WHAT = "an OPC UA identity"
    _KEY = "key"
    _HINT = (
        "the security policies Basic256Sha256 and Aes256_Sha256_RsaPss need an RSA "
        "key: issue a machine or software identity with --key-type rsa2048 or rsa3072"
    )

    def _check_profile(self) -> None:
        if not application_uris(self.certificate):
            raise InputError(
                f"{self.subject} names no application URI (a URI in its subjectAltName)"
            )

    @property
    def application_uri(self) -> str:
        """The first URI of the certificate's subjectAltName."""
        return application_uris(self.certificate)[0]

    def check(self, role: PeerRole) -> None:
        """Raise unless a peer would accept this certificate's profile for ``role``."""
        check_instance_certificate(
            self.certificate, role=role, application_uri=self.application_uri
        )

    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    def private_key_der(self) -> bytes:
        """The key as unencrypted PKCS#8 DER, in memory only: what the OPC UA stack loads."""
        return self.signer.private_key.private_bytes(
            Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
        )

    @classmethod
    def from_home(cls, home: Path, *, passphrase: bytes | None = None) -> ApplicationIdentity:
        """The identity installed in a node home (see :meth:`install`)."""
        chain, key = home / CHAIN_FILE, home / KEY_FILE
        if not chain.is_file() or not key.is_file():
            raise NotFoundError(
                f"the home {home} has no OPC UA identity",
                hint="trustbridge opcua install --cert CHAIN.pem --key KEY.pem, or give "
                "--cert and --key",
            )
        return cls.from_files(chain, key, passphrase=passphrase)

    @classmethod
    def install(
        cls, home: Path, chain_pem: bytes, key_pem: bytes, *, passphrase: bytes | None = None
    ) -> ApplicationIdentity:
        """Check a chain and key, then keep them in ``home`` (the key as given, mode 600)."""
        identity = cls.from_pem(chain_pem, key_pem, passphrase=passphrase, source="the new key")
        folder = home / CHAIN_FILE
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        (home / CHAIN_FILE).write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in identity.chain)
        )
        write_private(home / KEY_FILE, key_pem)
        return identity


@dataclass(frozen=True)
class UserIdentity(_RsaIdentity):
    """A person's RSA key (behind a file signer) and certificate chain, leaf first: the user of
    an OPC UA session, in an X.509 user identity token."""

    _WHAT = "a user identity"
    _KEY = "user key"
    _HINT = (
        "an X.509 user token is signed with the channel's RSA security policy: "
        "the person needs an identity with an RSA key (--key-type rsa2048 in the CSR)"
    )

    def _check_profile(self) -> None:
        try:
            check_user_certificate(self.certificate)
        except ValidationError as exc:
            raise InputError(
                f"{self.subject} cannot be a session's user: {getattr(exc, 'reason', exc.message)}"
            ) from None


def _spki(key: rsa.RSAPublicKey | object) -> bytes:
    if not isinstance(key, rsa.RSAPublicKey):
        return b""
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}") from None
