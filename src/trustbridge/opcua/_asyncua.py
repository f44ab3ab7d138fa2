"""Where trustbridge plugs into asyncua's server: the secure channel's certificate, the session
gate and the permissions. Plumbing; the decisions are in :mod:`trustbridge.opcua.peers`.

asyncua calls the server's certificate validator with the certificate a client names in
CreateSession, which need not be the one it opened the secure channel with (whose key the session
is then bound to), and it skips the validator where CreateSession names none. So:

- every security policy factory is wrapped to note, in the connection's task context, the
  certificate the secure channel was opened with (:class:`ChannelRecordingFactory`);
- the station's validator refuses a CreateSession certificate that is not that one, and marks
  the channel's certificate as accepted only after the peer passed;
- the user manager (:class:`ValidatedChannels`) activates a session only on a channel whose
  certificate was accepted, so a session without a checked certificate never activates.

If asyncua ever ran these steps in other task contexts, nothing would be marked and every
session would be refused: the arrangement fails closed.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from asyncua import ua
from asyncua.crypto import security_policies
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.user_managers import UserManager
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc

from trustbridge.opcua.peers import LOGGER
from trustbridge.opcua.policies import SecurityPolicy

__all__ = [
    "ChannelRecordingFactory",
    "ReadOnlyRuleset",
    "ValidatedChannels",
    "accept_channel",
    "channel_certificate",
    "policy_class",
    "policy_type",
    "quiet_asyncua",
    "status_code",
    "status_name",
]

#: The certificate (DER) the current connection's secure channel was opened with.
_CHANNEL: ContextVar[bytes | None] = ContextVar("trustbridge_opcua_channel", default=None)
#: The channel certificate whose peer the validator accepted on this connection.
_ACCEPTED: ContextVar[bytes | None] = ContextVar("trustbridge_opcua_accepted", default=None)


def quiet_asyncua() -> None:
    """asyncua logs every step and every refusal at length: silence it unless someone set a
    level for it (``logging.getLogger("asyncua").setLevel(...)``). Ours are logged by
    :data:`trustbridge.opcua.peers.LOGGER`."""
    logger = logging.getLogger("asyncua")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


def policy_class(policy: SecurityPolicy) -> type[security_policies.SecurityPolicy]:
    if policy is SecurityPolicy.BASIC256SHA256:
        return security_policies.SecurityPolicyBasic256Sha256
    return security_policies.SecurityPolicyAes256Sha256RsaPss


def policy_type(policy: SecurityPolicy) -> ua.SecurityPolicyType:
    if policy is SecurityPolicy.BASIC256SHA256:
        return ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt
    return ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt


def status_code(name: str) -> int:
    """The numeric OPC UA status code of a ``Bad...`` name (unknown: BadSecurityChecksFailed)."""
    code = getattr(StatusCodes, name, None)
    return int(code) if isinstance(code, int) else int(StatusCodes.BadSecurityChecksFailed)


def status_name(code: int) -> str:
    """The name of a numeric OPC UA status code (``BadCertificateUntrusted``, say)."""
    try:
        return get_name_and_doc(code)[0]
    except (KeyError, ValueError):  # pragma: no cover - codes asyncua does not know
        return hex(code)


class ChannelRecordingFactory(security_policies.SecurityPolicyFactory):
    """A server security policy factory that notes the secure channel's peer certificate."""

    @classmethod
    def wrap(cls, inner: security_policies.SecurityPolicyFactory) -> ChannelRecordingFactory:
        return cls(
            inner.cls,
            inner.mode,
            inner.certificate,
            inner.private_key,
            permission_ruleset=inner.permission_ruleset,
            certificate_chain=inner.certificate_chain,
        )

    def create(self, peer_certificate: bytes | None) -> Any:
        policy = super().create(peer_certificate)  # type: ignore[no-untyped-call]
        # The policy keeps the leaf (asyncua drops a chain sent along with it).
        _CHANNEL.set(policy.peer_certificate)
        _ACCEPTED.set(None)
        return policy


def channel_certificate() -> bytes | None:
    """The certificate the current connection's secure channel was opened with."""
    return _CHANNEL.get()


def accept_channel(certificate: bytes | None) -> None:
    """Mark the current connection's channel certificate as accepted (None: withdraw)."""
    _ACCEPTED.set(certificate)


class ValidatedChannels(UserManager):
    """asyncua's user manager: a user only on a channel whose certificate was accepted."""

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        accepted = _ACCEPTED.get()
        if accepted is None or not isinstance(certificate, bytes) or certificate != accepted:
            LOGGER.warning(
                "refused OPC UA session activation: the secure channel's certificate was not "
                "accepted on this connection"
            )
            return None
        return User(role=UserRole.User)


#: What a reader of the station may ask for: sessions, browsing and reading, nothing else.
_READ_ONLY = frozenset(
    {
        ObjectIds.CreateSessionRequest_Encoding_DefaultBinary,
        ObjectIds.ActivateSessionRequest_Encoding_DefaultBinary,
        ObjectIds.CloseSessionRequest_Encoding_DefaultBinary,
        ObjectIds.CloseSecureChannelRequest_Encoding_DefaultBinary,
        ObjectIds.GetEndpointsRequest_Encoding_DefaultBinary,
        ObjectIds.FindServersRequest_Encoding_DefaultBinary,
        ObjectIds.ReadRequest_Encoding_DefaultBinary,
        ObjectIds.BrowseRequest_Encoding_DefaultBinary,
        ObjectIds.BrowseNextRequest_Encoding_DefaultBinary,
        ObjectIds.TranslateBrowsePathsToNodeIdsRequest_Encoding_DefaultBinary,
    }
)


class ReadOnlyRuleset(SimpleRoleRuleset):
    """Accepted clients may browse and read; no writes, calls or subscriptions."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        if not isinstance(user, User) or user.role is not UserRole.User:
            return False
        return (
            isinstance(action_type_id, ua.NodeId)
            and action_type_id.NamespaceIndex == 0
            and action_type_id.Identifier in _READ_ONLY
        )
