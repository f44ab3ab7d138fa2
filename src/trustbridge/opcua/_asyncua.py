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

A session's user may be a person (an X.509 user identity token, OPC 10000-4 5.6.3). asyncua
checks the token's signature with whatever algorithm the token names (RSA-SHA1 too) and hands
the certificate to the user manager, which cannot wait for a trust decision. So each connection
runs a :class:`StationProcessor` that, before asyncua activates a session with such a token,
insists on the signature algorithm of the channel's security policy, checks the signature (the
proof of possession of the person's key, bound to this session's nonce) and only then lets the
station's user validator resolve the person's identity; the user manager makes a user of exactly
the certificate that passed. Every accepted session's user (:class:`SessionUser`) carries the
verdict it rests on, the person's or, for an anonymous token, the client application's, so that
the station can decide each Read on it.

A session's user is believed for a bounded time: until the earliest of the check's age limit
(``StationInternals.recheck_after``), the end of what its resolution holds for (the next CRL
update, say) and its certificate's expiry. After that every request of the session is refused
(``BadUserAccessDenied``) and the client connects again, which checks everything afresh (a
revocation shows then). A re-activation that is refused leaves the session without a user, and
a connection may present a user token only a few times.

If asyncua ever ran these steps in other task contexts, nothing would be marked and every
session would be refused: the arrangement fails closed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.uaprocessor import UaProcessor
from asyncua.server.user_managers import UserManager
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc
from asyncua.ua.ua_binary import struct_from_binary
from cryptography import x509

from trustbridge.clock import Clock, SystemClock
from trustbridge.opcua.peers import LOGGER, PeerValidator, PeerVerdict, printable
from trustbridge.opcua.policies import SecurityPolicy

__all__ = [
    "ChannelBoundSession",
    "ChannelRecordingFactory",
    "NodeGate",
    "ReadOnlyRuleset",
    "SessionUser",
    "StationBinaryServer",
    "StationInternals",
    "StationProcessor",
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
#: The validator's verdict on the accepted channel certificate.
_APPLICATION: ContextVar[PeerVerdict | None] = ContextVar(
    "trustbridge_opcua_application", default=None
)
#: The person of the ActivateSession being processed (its certificate's DER and the accepted
#: verdict), or None where its token is not an X.509 user identity token.
_USER: ContextVar[tuple[bytes, PeerVerdict] | None] = ContextVar(
    "trustbridge_opcua_user", default=None
)
#: How many ActivateSession messages with a user token the current connection has sent.
_TOKENS: ContextVar[int] = ContextVar("trustbridge_opcua_tokens", default=0)
#: The most a connection may send: each costs a trust resolution.
MAX_USER_TOKENS = 4
#: How long a session's checks hold at most before the client must connect again.
RECHECK_AFTER = timedelta(minutes=15)
#: The longest text a peer chose that goes into a log line.
_LOGGED_TEXT = 120


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
        _APPLICATION.set(None)
        return policy


def channel_certificate() -> bytes | None:
    """The certificate the current connection's secure channel was opened with."""
    return _CHANNEL.get()


def accept_channel(certificate: bytes | None, verdict: PeerVerdict | None = None) -> None:
    """Mark the current connection's channel certificate as accepted, on ``verdict`` (None:
    withdraw)."""
    _ACCEPTED.set(certificate)
    _APPLICATION.set(verdict if certificate is not None else None)


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
        try:
            return super().activate_session(params, peer_certificate)
        except BaseException:
            # A refused re-activation does not leave the session to its former user.
            self.user = User(role=UserRole.Anonymous)  # the ruleset refuses it all
            raise

    def _visible(self, node_ids: Sequence[ua.NodeId], service: str) -> list[bool]:
        """Which of ``node_ids`` this session may see (read, browse to, find by name), by the
        station's node gate; none where the gate fails (fail closed, and said so)."""
        iserver = self.iserver
        if not isinstance(iserver, StationInternals) or iserver.node_gate is None:
            raise ServiceError(StatusCodes.BadInternalError)  # pragma: no cover - callers check
        gate = iserver.node_gate
        user = self.user
        if not isinstance(user, SessionUser):  # pragma: no cover - the ruleset refuses first
            raise ServiceError(StatusCodes.BadUserAccessDenied)
        if not node_ids:
            return []
        try:
            answers = list(gate(user, node_ids))
        except Exception as exc:  # asyncua's own log is quiet
            LOGGER.warning(
                "denied an OPC UA %s: the station's access decision failed with %s (%s)",
                service,
                type(exc).__name__,
                _connection(),
            )
            return [False] * len(node_ids)
        if len(answers) != len(node_ids):  # pragma: no cover - a gate that miscounts hides all
            return [False] * len(node_ids)
        return [answer is True for answer in answers]

    async def read(self, params: ua.ReadParameters) -> list[ua.DataValue]:
        if getattr(self.iserver, "node_gate", None) is None:
            return await super().read(params)
        nodes = list(params.NodesToRead)
        _bounded(len(nodes))
        visible = self._visible([node.NodeId for node in nodes], "read")
        allowed = [node for node, ok in zip(nodes, visible, strict=True) if ok]
        if len(allowed) == len(nodes):
            return await super().read(params)
        values: list[ua.DataValue] = []
        if allowed:
            subset = ua.ReadParameters(
                MaxAge=params.MaxAge,
                TimestampsToReturn=params.TimestampsToReturn,
                NodesToRead=allowed,
            )
            values = list(await super().read(subset))
            if len(values) != len(allowed):  # pragma: no cover - asyncua answers each node
                raise ServiceError(StatusCodes.BadInternalError)
        read = iter(values)
        return [next(read) if ok else _denied_value() for ok in visible]

    async def browse(self, params: ua.BrowseParameters) -> list[ua.BrowseResult]:
        """Browse, leaving out the references to nodes this session may not see (their names
        would tell which sensors exist); such a node itself answers as one that does not
        exist."""
        if getattr(self.iserver, "node_gate", None) is None:
            return list(await super().browse(params))
        _bounded(len(params.NodesToBrowse))
        results = list(await super().browse(params))
        starts = [description.NodeId for description in params.NodesToBrowse]
        if len(results) != len(starts):  # pragma: no cover - asyncua answers each node
            raise ServiceError(StatusCodes.BadInternalError)
        targets = [reference.NodeId for result in results for reference in result.References]
        visible = self._visible(starts + targets, "browse")
        shown, cursor = [], len(starts)
        for result, start_visible in zip(results, visible, strict=False):
            count = len(result.References)
            kept = [
                reference
                for reference, ok in zip(
                    result.References, visible[cursor : cursor + count], strict=True
                )
                if ok
            ]
            cursor += count
            if not start_visible:
                shown.append(ua.BrowseResult(StatusCode=_status(StatusCodes.BadNodeIdInvalid)))
            else:
                result.References = kept
                shown.append(result)
        return shown

    async def translate_browsepaths_to_nodeids(
        self, params: list[ua.BrowsePath]
    ) -> list[ua.BrowsePathResult]:
        """TranslateBrowsePathsToNodeIds through visible nodes only: a path that needs a node
        this session may not see does not match, wherever on the path that node is (a match
        would tell that it exists)."""
        if getattr(self.iserver, "node_gate", None) is None:
            return list(await super().translate_browsepaths_to_nodeids(params))
        _bounded(len(params))
        return [self._translate(path) for path in params]

    def _translate(self, path: ua.BrowsePath) -> ua.BrowsePathResult:
        view = self.iserver.view_service
        elements = list(path.RelativePath.Elements)
        if not elements or not elements[-1].TargetName.Name:
            return _path_result(StatusCodes.BadBrowseNameInvalid)
        if len(elements) > MAX_PATH_ELEMENTS:
            return _path_result(StatusCodes.BadTooManyOperations)
        if (
            path.StartingNode not in self.iserver.aspace
            or not self._visible([path.StartingNode], "browse path")[0]
        ):
            return _path_result(StatusCodes.BadNodeIdInvalid)  # as for a node that is not there
        current = [path.StartingNode]
        for element in elements:
            found = list(  # each node once, however many ways lead to it
                dict.fromkeys(
                    node
                    for start in current
                    for node in view._find_elements_in_node(element, start)
                )
            )
            visible = self._visible(found, "browse path")
            current = [node for node, ok in zip(found, visible, strict=True) if ok]
            if not current:
                return _path_result(StatusCodes.BadNoMatch)
        result = _path_result(StatusCodes.Good)
        result.Targets = [
            ua.BrowsePathTarget(TargetId=node, RemainingPathIndex=ua.Index(0xFFFFFFFF))
            for node in current
        ]
        return result


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


def _denied_value() -> ua.DataValue:
    # A node the session may not see reads as one that is not there (hidden nodes would
    # otherwise be told apart from missing ones, and counted).
    return ua.DataValue(StatusCode=_status(StatusCodes.BadNodeIdUnknown))


def _bounded(count: int) -> None:
    """Refuse a request naming more nodes or paths than a station answers at once."""
    if count > MAX_NODES_PER_REQUEST:
        raise ServiceError(StatusCodes.BadTooManyOperations)


def _path_result(code: int) -> ua.BrowsePathResult:
    result = ua.BrowsePathResult()
    result.StatusCode = _status(code)
    return result


@dataclass
class SessionUser(User):
    """The user of an activated station session and the verdict it rests on: the person's
    (an X.509 user identity token) or, for an anonymous token, the client application's."""

    certificate: x509.Certificate | None = None
    verdict: PeerVerdict | None = None
    #: True for a person (X.509 user token), False for the client application alone.
    person: bool = False
    #: For a person: the client application it acts through (the secure channel's
    #: certificate) and the verdict on it.
    via_certificate: x509.Certificate | None = None
    via_verdict: PeerVerdict | None = None
    #: Whatever the station keeps about this user for its decisions (its access entity, ...).
    memo: dict[Any, Any] | None = None
    #: Until when the checks this user rests on hold (None: not a checked user).
    expires: datetime | None = None
    clock: Clock | None = None
    #: Whether the end of its checks was logged.
    ended: bool = False

    def current(self) -> bool:
        """Whether the checks this user rests on still hold."""
        if self.expires is None or self.clock is None:
            return False
        if self.clock.now() < self.expires:
            return True
        if not self.ended:
            self.ended = True
            LOGGER.warning(
                "ended OPC UA session of %s: its checks held until %s; the client connects "
                "again to be checked afresh (%s)",
                printable(str(self.name))[:_LOGGED_TEXT],
                f"{self.expires:%Y-%m-%dT%H:%M:%SZ}",
                _connection(),
            )
        return False


#: Decides, for a session's user, which of the nodes of one Read request it may read: for each
#: node None (read it) or the status code to answer instead.
#: Which of some nodes a session's user may see: read, browse to, find by name (True each).
NodeGate = Callable[[SessionUser, Sequence[ua.NodeId]], Sequence[bool]]
#: Decides on the person of an X.509 user identity token (a validator in role USER).
UserCheck = Callable[[x509.Certificate, str | None], Awaitable[PeerVerdict]]

_ANONYMOUS = User(role=UserRole.Anonymous)
#: At most this many nodes (Read, Browse) or paths (TranslateBrowsePaths) in one request at a
#: station that decides reads, and this many elements in one browse path.
MAX_NODES_PER_REQUEST = 1000
MAX_PATH_ELEMENTS = 32


class StationInternals(InternalServer):
    """asyncua's internal server for a station: sessions only on a channel with security, one
    per connection, never reattached to another connection; no RegisterServer.

    ``users`` decides on the persons of X.509 user identity tokens (None: the station takes
    none); ``node_gate`` on every Read, Browse and TranslateBrowsePathsToNodeIds (None: an
    accepted session sees and reads everything).
    """

    users: PeerValidator | None = None
    node_gate: NodeGate | None = None
    #: The station's clock (session ages, expiries).
    clock: Clock = SystemClock()
    #: How long a session's checks hold at most.
    recheck_after: timedelta = RECHECK_AFTER

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
    """asyncua's user manager: a user only on a channel whose certificate was accepted; a person
    only with the certificate the station's user validator accepted for this activation."""

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        accepted = _ACCEPTED.get()
        application = _APPLICATION.get()
        if (
            accepted is None
            or application is None
            or not isinstance(certificate, bytes)
            or username is not None
            or password is not None
        ):
            LOGGER.warning(
                "refused OPC UA session activation: the secure channel's certificate was not "
                "accepted on this connection (%s)",
                _connection(),
            )
            return None
        person = _USER.get()
        if person is not None:
            der, verdict = person
            if certificate != der:  # pragma: no cover - the processor checked this token
                LOGGER.warning(
                    "refused OPC UA session activation: the user token is not the one checked (%s)",
                    _connection(),
                )
                return None
            return _session_user(iserver, der, verdict, via=(accepted, application))
        if certificate != accepted:
            LOGGER.warning(
                "refused OPC UA session activation: a user token nobody checked (%s)",
                _connection(),
            )
            return None
        return _session_user(iserver, accepted, application)


def _session_user(
    iserver: Any,
    der: bytes,
    verdict: PeerVerdict,
    *,
    via: tuple[bytes, PeerVerdict] | None = None,
) -> SessionUser:
    """The user of a session: the client application alone, or (``via``: the application's
    certificate and verdict) a person acting through it. Believed until the earliest of the
    station's age limit, the end of a resolution's validity and a certificate's expiry, the
    person's and the application's alike."""
    clock: Clock = getattr(iserver, "clock", None) or SystemClock()
    recheck: timedelta = getattr(iserver, "recheck_after", None) or RECHECK_AFTER
    certificate = x509.load_der_x509_certificate(der)
    held = [(certificate, verdict)]
    if via is not None:
        held.append((x509.load_der_x509_certificate(via[0]), via[1]))
    ends = []
    for one, checked in held:
        ends += [checked.at + recheck, one.not_valid_after_utc]
        if checked.resolution is not None:
            ends.append(checked.resolution.valid_until)
    return SessionUser(
        role=UserRole.User,
        name=verdict.subject,
        certificate=certificate,
        verdict=verdict,
        person=via is not None,
        via_certificate=held[1][0] if via is not None else None,
        via_verdict=held[1][1] if via is not None else None,
        expires=min(ends),
        clock=clock,
    )


_ACTIVATE_SESSION = ua.NodeId(ua.Int32(ObjectIds.ActivateSessionRequest_Encoding_DefaultBinary))


class StationProcessor(UaProcessor):
    """A connection's request processor that decides on an X.509 user identity token before
    asyncua activates a session with it (asyncua's user manager cannot wait for a trust
    decision): the channel policy's signature algorithm, the signature (proof of possession,
    bound to the session's nonce), then the station's user validator."""

    async def _process_message(self, typeid: Any, requesthdr: Any, seqhdr: Any, body: Any) -> Any:
        if typeid == _ACTIVATE_SESSION:
            _USER.set(None)
            if self.session is not None:
                params = struct_from_binary(ua.ActivateSessionParameters, body.copy())
                token = params.UserIdentityToken
                if isinstance(token, ua.X509IdentityToken):
                    try:
                        _USER.set(await self._check_user(token, params.UserTokenSignature))
                    except BaseException:
                        # A refused re-activation leaves the session without a user.
                        self.session.user = User(role=UserRole.Anonymous)
                        raise
        return await super()._process_message(  # type: ignore[no-untyped-call]
            typeid, requesthdr, seqhdr, body
        )

    async def _check_user(
        self, token: ua.X509IdentityToken, signature: ua.SignatureData
    ) -> tuple[bytes, PeerVerdict]:
        iserver = self.iserver
        users = getattr(iserver, "users", None)
        if not isinstance(users, PeerValidator):
            raise _refuse(
                "an X.509 user token (this station takes none)",
                StatusCodes.BadIdentityTokenRejected,
            )
        tokens = _TOKENS.get() + 1
        _TOKENS.set(tokens)
        if tokens > MAX_USER_TOKENS:
            raise _refuse(
                f"a user token beyond the {MAX_USER_TOKENS} one connection may present",
                StatusCodes.BadTooManyOperations,
            )
        session = self.session
        if (
            _ACCEPTED.get() is None
            or not isinstance(session, ChannelBoundSession)
            or session.channel != _CHANNEL.get()
        ):
            raise _refuse(
                "an X.509 user token on a channel whose certificate was not accepted",
                StatusCodes.BadSecurityChecksFailed,
            )
        expected = getattr(self._connection.security_policy, "AsymmetricSignatureURI", "")
        algorithm = str(signature.Algorithm or "")
        if not expected or algorithm != expected:
            shown = printable(algorithm[:_LOGGED_TEXT])
            shown += "..." if len(algorithm) > _LOGGED_TEXT else ""
            raise _refuse(
                f"an X.509 user token signed with {shown!r}, not with the "
                f"channel's {expected or 'signing algorithm'}",
                StatusCodes.BadUserSignatureInvalid,
            )
        data = token.CertificateData
        try:
            certificate = x509.load_der_x509_certificate(data or b"")
        except ValueError:
            raise _refuse(
                "an X.509 user token whose certificate data is not one DER certificate",
                StatusCodes.BadIdentityTokenInvalid,
            ) from None
        try:
            # asyncua's check of the token signature over the server certificate and this
            # session's nonce; run before the (costly) trust decision, and again by asyncua.
            iserver.verify_x509_token(session, token, signature)
        except Exception:
            raise _refuse(
                "an X.509 user token whose signature does not verify with its certificate",
                StatusCodes.BadUserSignatureInvalid,
            ) from None
        verdict = await users.check(certificate, "", address=_PEER.get())
        if not verdict.accepted:
            # The validator logged the reason; the client learns only that it was refused.
            raise ServiceError(StatusCodes.BadIdentityTokenRejected)
        return bytes(data), verdict


class StationProtocol(OPCUAProtocol):
    """asyncua's connection protocol with a :class:`StationProcessor`."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.processor is not None:  # None: refused at max_connections
            processor = StationProcessor(self.iserver, self.transport, self.limits)
            processor.set_policies(self.policies)  # type: ignore[no-untyped-call]
            self.processor = processor


class StationBinaryServer(BinaryServer):
    """asyncua's TCP server making :class:`StationProtocol` connections."""

    def _make_protocol(self) -> OPCUAProtocol:
        return StationProtocol(
            iserver=self.iserver,
            policies=self._policies,
            clients=self.clients,
            closing_tasks=self.closing_tasks,
            limits=self.limits,
        )


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
        if not isinstance(user, SessionUser) or user.role is not UserRole.User:
            return False
        if not user.current():
            return False
        return (
            isinstance(action_type_id, ua.NodeId)
            and action_type_id.NamespaceIndex == 0
            and action_type_id.Identifier in _READ_ONLY
        )
