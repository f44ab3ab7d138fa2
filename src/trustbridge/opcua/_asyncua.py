"""Where trustbridge plugs into asyncua's server: the secure channel's certificate, the session
gate and the permissions. Plumbing; the decisions are in :mod:`trustbridge.opcua.peers`.

asyncua calls the server's certificate validator with the certificate a client names in
CreateSession, which need not be the one it opened the secure channel with (whose key the session
is then bound to), and it skips the validator where CreateSession names none. It also opens a
channel without security (SecurityPolicy None) whatever endpoints the server offers, serves
CreateSession and RegisterServer on it, attaches a connection to any live session whose
(sequential) authentication token an ActivateSession names, and keeps a session attached even
when its activation is refused. So:

- every security policy factory is wrapped to note, in the connection's task context, the
  certificate the secure channel was opened with (:class:`ChannelRecordingFactory`);
- the internal server (:class:`StationInternals`) creates sessions only on a channel with
  security, one per connection, refuses to reattach a session to another connection, and
  refuses RegisterServer (nobody registers with a station);
- its sessions (:class:`ChannelBoundSession`) insist on a CreateSession certificate, so that the
  validator always runs; a session whose creation failed is closed at once;
- the station's validator refuses a CreateSession certificate that is not the channel's, and
  marks the channel's certificate as accepted only after the peer passed;
- the user manager (:class:`ValidatedChannels`) activates a session only on a channel whose
  certificate was accepted, so a session without a checked certificate never activates.

If asyncua ever ran these steps in other task contexts, nothing would be marked and every
session would be refused: the arrangement fails closed.
"""

from __future__ import annotations

import hashlib
import logging
from contextvars import ContextVar
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc

from trustbridge.opcua.peers import LOGGER, printable
from trustbridge.opcua.policies import SecurityPolicy

__all__ = [
    "ChannelBoundSession",
    "ChannelRecordingFactory",
    "ReadOnlyRuleset",
    "StationInternals",
    "ValidatedChannels",
    "accept_channel",
    "channel_certificate",
    "peer_address",
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
#: The current connection's peer (``host:port``), once it asked for a session.
_PEER: ContextVar[str | None] = ContextVar("trustbridge_opcua_peer", default=None)
#: Whether the current connection has had its session.
_SESSION: ContextVar[bool] = ContextVar("trustbridge_opcua_session", default=False)


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


def peer_address() -> str | None:
    """The current connection's peer (``host:port``), once it asked for a session."""
    return _PEER.get()


def _address(peername: Any) -> str | None:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host = str(peername[0])
        return f"[{host}]:{peername[1]}" if ":" in host else f"{host}:{peername[1]}"
    return printable(str(peername)) if peername else None


def _connection() -> str:
    """Who is on the current connection, for a log line: its address (where known) and the
    certificate its secure channel was opened with."""
    channel = _CHANNEL.get()
    who = (
        f"channel certificate sha256 {hashlib.sha256(channel).hexdigest()[:16]}"
        if channel
        else "no channel certificate (SecurityPolicy None)"
    )
    address = _PEER.get()
    return f"{address}, {who}" if address else who


def _refuse(what: str, status: int) -> ServiceError:
    LOGGER.warning("refused OPC UA %s (%s): %s", what, status_name(status), _connection())
    return ServiceError(status)


class ChannelBoundSession(InternalSession):
    """A station session: created only with the certificate of its secure channel named (so
    that the station's validator runs), activated only on that channel, closed at once where
    its creation fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The certificate of the secure channel the session was created on.
        self.channel = _CHANNEL.get()

    async def create_session(
        self, params: ua.CreateSessionParameters, sockname: tuple[str, int] | None = None
    ) -> ua.CreateSessionResult:
        try:
            if not params.ClientCertificate:
                raise _refuse(
                    "CreateSession naming no client certificate",
                    StatusCodes.BadSecurityChecksFailed,
                )
            return await super().create_session(params, sockname)
        except BaseException:
            await self.close_session(True)
            raise

    def activate_session(
        self, params: ua.ActivateSessionParameters, peer_certificate: bytes | None
    ) -> ua.ActivateSessionResult:
        if self.channel is None or peer_certificate != self.channel:
            raise _refuse(
                "ActivateSession on a channel the session was not created on",
                StatusCodes.BadSecurityChecksFailed,
            )
        return super().activate_session(params, peer_certificate)


_ANONYMOUS = User(role=UserRole.Anonymous)


class StationInternals(InternalServer):
    """asyncua's internal server for a station: sessions only on a channel with security, one
    per connection, never reattached to another connection; no RegisterServer."""

    def create_session(
        self, name: str, user: User = _ANONYMOUS, external: bool = False
    ) -> InternalSession:
        if not external:  # pragma: no cover - asyncua makes its own session directly
            return super().create_session(name, user=user, external=external)
        if _PEER.get() is None:
            _PEER.set(_address(name))
        if _CHANNEL.get() is None:
            raise _refuse(
                "CreateSession on a channel without security", StatusCodes.BadSecurityModeRejected
            )
        if _SESSION.get():
            raise _refuse(
                "a second CreateSession on one connection", StatusCodes.BadTooManySessions
            )
        _SESSION.set(True)
        return ChannelBoundSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )

    def lookup_external_session(self, auth_token: ua.NodeId) -> InternalSession | None:
        # Part 4 6.7 lets a client move its session to a new secure channel; here the
        # validator decides on the channel a session is created on, so no session moves (and
        # asyncua would keep a session attached whose activation is refused).
        _refuse(
            "ActivateSession of a session created on another connection",
            StatusCodes.BadSessionIdInvalid,
        )
        return None

    def register_server(self, server: Any, conf: Any = None) -> None:
        raise _refuse("RegisterServer", StatusCodes.BadServiceUnsupported)


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
                "accepted on this connection (%s)",
                _connection(),
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
