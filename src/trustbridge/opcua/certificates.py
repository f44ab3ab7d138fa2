"""What OPC UA asks of an application instance certificate, checked on a peer's certificate.

OPC 10000-6 (Part 6) 6.2.2 profiles the certificate; OPC 10000-4 (Part 4) 6.1.3 says how a peer
checks it. These checks run before the peer's trust is resolved (that is
:mod:`trustbridge.opcua.peers`): an RSA key the security policies can use (2048 to 4096 bits,
the limits of ``Basic256Sha256`` and ``Aes256_Sha256_RsaPss``), an end-entity certificate, the
key usages digitalSignature, keyEncipherment and dataEncipherment, the extended key usage of
the peer's role (serverAuth for a server, clientAuth for a client), the application URI the
peer describes itself with among the certificate's URI names, and for a server the host the
client dialled among its DNS names or IP addresses.

nonRepudiation is not required of a peer, so that certificates of other stacks without it are
accepted; trustbridge's own RSA machine and software certificates carry it.

A user of a session (OPC 10000-4 5.6.3, an X.509 user identity token) is a person: a trustbridge
person identity with an RSA key the channel's security policy can sign the token with, the key
usage digitalSignature and, where it limits the extended key usage, clientAuth
(:func:`check_user_certificate`).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustbridge.errors import ValidationError
from trustbridge.pki.profiles import SubjectKind, subject_kind_of

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "PeerRefusedError",
    "PeerRole",
    "application_uris",
    "check_host",
    "check_instance_certificate",
    "check_user_certificate",
]

#: The asymmetric key limits of both security policies (OPC 10000-7, security policy profiles).
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096


class PeerRole(enum.StrEnum):
    """The part a peer plays in a session."""

    CLIENT = "client"
    SERVER = "server"
    #: The person a client's session acts for (an X.509 user identity token).
    USER = "user"

    @property
    def eku(self) -> x509.ObjectIdentifier:
        """The extended key usage a certificate needs for this role."""
        if self is PeerRole.SERVER:
            return ExtendedKeyUsageOID.SERVER_AUTH
        return ExtendedKeyUsageOID.CLIENT_AUTH

    @property
    def eku_name(self) -> str:
        return "serverAuth" if self is PeerRole.SERVER else "clientAuth"

    @property
    def application_types(self) -> frozenset[str]:
        """The ``ApplicationType`` names a peer in this role may describe itself with."""
        if self is PeerRole.SERVER:
            return frozenset({"Server", "ClientAndServer"})
        return frozenset({"Client", "ClientAndServer"})


class PeerRefusedError(ValidationError):
    """A peer's certificate that OPC UA or the trust resolver refuses.

    ``status`` is the OPC UA status code the refusal is answered with (``BadCertificate...``),
    ``peer`` the certificate's subject, ``reason`` the message without the peer's name.
    """

    def __init__(
        self,
        message: str,
        *,
        status: str,
        peer: str,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.peer = peer
        self.reason = reason or message


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension: treated as absent, which refuses below
        return None


def application_uris(certificate: x509.Certificate) -> tuple[str, ...]:
    """The URIs in the certificate's subjectAltName (an OPC UA application URI is one)."""
    san = _extension(certificate, x509.SubjectAlternativeName)
    if not isinstance(san, x509.SubjectAlternativeName):
        return ()
    return tuple(san.get_values_for_type(x509.UniformResourceIdentifier))


def check_instance_certificate(
    certificate: x509.Certificate,
    *,
    role: PeerRole,
    application_uri: str,
    application_type: str | None = None,
) -> None:
    """Raise :class:`PeerRefusedError` unless ``certificate`` can be the application instance
    certificate of a peer in ``role`` that describes itself with ``application_uri`` (and
    ``application_type``, an ``ApplicationType`` name, where given)."""
    peer = _subject(certificate)

    def refuse(message: str, status: str) -> PeerRefusedError:
        return PeerRefusedError(
            f"{role} {peer}: {message}", status=status, peer=peer, reason=message
        )

    if role is PeerRole.USER:
        raise ValueError("a user's certificate is checked with check_user_certificate")
    _check_rsa_end_entity(certificate, refuse, "an application instance certificate")
    kind = subject_kind_of(certificate)
    if kind in (SubjectKind.ORGANIZATION, SubjectKind.PERSON):
        raise refuse(
            f"a trustbridge {kind} identity is no application instance certificate "
            "(machines and software processes have those)",
            "BadCertificateUseNotAllowed",
        )
    usage = _extension(certificate, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage):
        raise refuse("the certificate has no key usage extension", "BadCertificateUseNotAllowed")
    missing = [
        name
        for name, present in (
            ("digitalSignature", usage.digital_signature),
            ("keyEncipherment", usage.key_encipherment),
            ("dataEncipherment", usage.data_encipherment),
        )
        if not present
    ]
    if missing:
        raise refuse(
            f"the key usage lacks {', '.join(missing)} (OPC UA Part 6 6.2.2)",
            "BadCertificateUseNotAllowed",
        )
    extended = _extension(certificate, x509.ExtendedKeyUsage)
    if not isinstance(extended, x509.ExtendedKeyUsage) or role.eku not in extended:
        raise refuse(
            f"the extended key usage lacks {role.eku_name} for a {role}",
            "BadCertificateUseNotAllowed",
        )
    uris = application_uris(certificate)
    if not application_uri or application_uri not in uris:
        named = ", ".join(uris) or "none"
        raise refuse(
            f"the application URI {application_uri!r} it describes itself with is not in its "
            f"certificate (URIs there: {named})",
            "BadCertificateUriInvalid",
        )
    if application_type is not None and application_type not in role.application_types:
        raise refuse(
            f"it describes itself as a {application_type} application, not as a {role}",
            "BadCertificateUseNotAllowed",
        )


def _check_rsa_end_entity(
    certificate: x509.Certificate, refuse: Callable[[str, str], PeerRefusedError], what: str
) -> None:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise refuse(
            f"the key is {type(key).__name__.removeprefix('_')}, not RSA as the security "
            "policies Basic256Sha256 and Aes256_Sha256_RsaPss need",
            "BadCertificateInvalid",
        )
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise refuse(
            f"the RSA key has {key.key_size} bits, outside {MIN_RSA_BITS} to {MAX_RSA_BITS}",
            "BadCertificateInvalid",
        )
    constraints = _extension(certificate, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise refuse(f"a CA certificate is not {what}", "BadCertificateInvalid")


def check_user_certificate(certificate: x509.Certificate) -> None:
    """Raise :class:`PeerRefusedError` unless ``certificate`` can stand for the person in an
    X.509 user identity token: a trustbridge person identity, an RSA end-entity key (the token
    is signed with the channel's security policy), digitalSignature, and clientAuth where the
    extended key usage is limited."""
    peer = _subject(certificate)
    role = PeerRole.USER

    def refuse(message: str, status: str) -> PeerRefusedError:
        return PeerRefusedError(
            f"{role} {peer}: {message}", status=status, peer=peer, reason=message
        )

    _check_rsa_end_entity(certificate, refuse, "a user's identity")
    kind = subject_kind_of(certificate)
    if kind is not SubjectKind.PERSON:
        named = f"a trustbridge {kind} identity" if kind is not None else "no trustbridge identity"
        raise refuse(
            f"{named} is not a person's: a session's user is a person",
            "BadCertificateUseNotAllowed",
        )
    usage = _extension(certificate, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise refuse(
            "the key usage lacks digitalSignature (the user token is a signature)",
            "BadCertificateUseNotAllowed",
        )
    # Absent: not limited. (A malformed extension cannot get here: the certificate's
    # extensions are parsed together, and the key usage above would be missing.)
    extended = _extension(certificate, x509.ExtendedKeyUsage)
    if isinstance(extended, x509.ExtendedKeyUsage) and not (
        ExtendedKeyUsageOID.CLIENT_AUTH in extended
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in extended
    ):
        raise refuse("the extended key usage lacks clientAuth", "BadCertificateUseNotAllowed")


def check_host(certificate: x509.Certificate, host: str) -> None:
    """Raise :class:`PeerRefusedError` unless the server certificate names ``host`` (the host
    of the endpoint URL the client dialled) as a DNS name or an IP address (Part 4 6.1.3)."""
    san = _extension(certificate, x509.SubjectAlternativeName)
    names: list[str] = []
    if isinstance(san, x509.SubjectAlternativeName):
        names += [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    try:
        wanted = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        wanted = host.lower().rstrip(".")
    if wanted not in names:
        peer = _subject(certificate)
        reason = (
            f"the endpoint's host {host} is not among its certificate's DNS names and IP "
            f"addresses ({', '.join(names) or 'none'})"
        )
        raise PeerRefusedError(
            f"server {peer}: {reason}",
            status="BadCertificateHostNameInvalid",
            peer=peer,
            reason=reason,
        )
