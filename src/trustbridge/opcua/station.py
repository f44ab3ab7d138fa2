"""The supplier's sensor test station as an OPC UA server whose clients trustbridge decides on.

The address space (namespace :data:`NAMESPACE`) holds under ``Objects/SensorTests`` one object per
sensor serial with ``Verdict`` (String), ``TestedAt`` (DateTime), ``ReportSha256`` (String) and
``Measurements``, a Double variable per measured value with a ``Unit`` property. Everything is
read-only. The server offers ``Basic256Sha256`` and ``Aes256_Sha256_RsaPss`` in SignAndEncrypt
mode only, anonymous user tokens on those encrypted channels, and no trust folder: each client's
application instance certificate goes to a :class:`~trustbridge.opcua.peers.PeerValidator`
(the trust resolver), bound to the secure channel (see :mod:`trustbridge.opcua._asyncua`).

Given a validator for users (role :attr:`PeerRole.USER`), the station also takes X.509 user
identity tokens: a person, with a trustbridge person identity the resolver accepts, acting
through the client application (and, with ``anonymous=False``, only such sessions). Given a
:class:`~trustbridge.opcua.access.StationAccess`, every Read of a sensor's nodes is decided by
the access policies for the session's user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.common.utils import ServiceError
from asyncua.server.server import Server
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.errors import ConfigError, InputError
from trustbridge.opcua import _asyncua
from trustbridge.opcua.access import StationAccess
from trustbridge.opcua.certificates import PeerRole
from trustbridge.opcua.identity import ApplicationIdentity
from trustbridge.opcua.peers import PeerValidator, PeerVerdict
from trustbridge.opcua.policies import SecurityPolicy
from trustbridge.opcua.results import SensorTestResult

__all__ = ["NAMESPACE", "PRODUCT_URI", "StationServer"]

#: The namespace of the station's test results.
NAMESPACE = "urn:trustbridge:opcua:sensor-tests"
PRODUCT_URI = "urn:trustbridge:opcua:test-station"
_PATH = "trustbridge/station"


class _Server(Server):
    """asyncua's server with every security policy factory noting its channel's certificate."""

    async def _setup_server_nodes(self) -> None:
        await super()._setup_server_nodes()
        self._policies[:] = [_asyncua.ChannelRecordingFactory.wrap(p) for p in self._policies]

    async def start(self) -> None:
        # asyncua's Server.start, listening with the station's own connection processors
        # (which decide on X.509 user tokens before a session is activated with one).
        await self._setup_server_nodes()
        await self.iserver.start()
        try:
            host, port = self._get_bind_socket_info()
            if host is None or port is None:  # pragma: no cover - set_endpoint names both
                raise ConfigError("the station has no endpoint to listen on")
            binary = _asyncua.StationBinaryServer(self.iserver, host, port, self.limits)
            binary.set_policies(self._policies)
            await binary.start()
        except BaseException:
            await self.iserver.stop()
            raise
        self.bserver = binary


class StationServer:
    """A running (after :meth:`start`) OPC UA server of a sensor test station.

    ``validator`` decides on clients (its role must be :attr:`PeerRole.CLIENT`); ``port`` 0
    picks a free port (the endpoint then names the one chosen). ``application_uri`` overrides
    the URI the server describes itself with (clients refuse one its certificate lacks).
    """

    def __init__(
        self,
        *,
        identity: ApplicationIdentity,
        validator: PeerValidator,
        results: Sequence[SensorTestResult],
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        policies: Sequence[SecurityPolicy] = tuple(SecurityPolicy),
        application_uri: str | None = None,
        users: PeerValidator | None = None,
        anonymous: bool = True,
        access: StationAccess | None = None,
        recheck_after: timedelta = _asyncua.RECHECK_AFTER,
    ) -> None:
        if validator.role is not PeerRole.CLIENT:
            raise ConfigError("the station's validator must decide on clients")
        if users is not None and users.role is not PeerRole.USER:
            raise ConfigError("the station's user validator must decide on users")
        if recheck_after <= timedelta(0):
            raise InputError("a session's checks must hold for some time (recheck_after > 0)")
        if not anonymous and users is None:
            raise ConfigError(
                "a station without anonymous sessions needs a validator for user tokens"
            )
        if not policies:
            raise ConfigError("the station needs at least one security policy")
        if not 0 <= port <= 65535:
            raise InputError(f"port {port} is not a TCP port")
        identity.check(PeerRole.SERVER)
        serials = [r.serial for r in results]
        if len(set(serials)) != len(serials):
            raise InputError("the station's results name a serial more than once")
        self.identity = identity
        self.validator = validator
        self.results = tuple(results)
        self.host = host
        self.port = port
        self.name = name or identity.certificate.subject.rfc4514_string()
        self.policies = tuple(dict.fromkeys(policies))
        #: The URI the server describes itself with: its certificate's, unless told otherwise.
        self.application_uri = application_uri or identity.application_uri
        self.users = users
        self.anonymous = anonymous
        self.access = access
        self.recheck_after = recheck_after
        #: The sensor each node of the address space belongs to (filled by :meth:`start`).
        self._serials: dict[ua.NodeId, str] = {}
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        """``opc.tcp://HOST:PORT/trustbridge/station`` (the port chosen, once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{self.port}/{_PATH}"

    @property
    def verdicts(self) -> list[PeerVerdict]:
        return self.validator.verdicts

    @property
    def refusals(self) -> list[PeerVerdict]:
        return self.validator.refusals

    @property
    def user_verdicts(self) -> list[PeerVerdict]:
        """The verdicts on the persons of X.509 user tokens."""
        return self.users.verdicts if self.users is not None else []

    async def start(self) -> str:
        """Build the address space and listen; return the endpoint URL."""
        if self._server is not None:
            raise ConfigError("the station is running already")
        _asyncua.quiet_asyncua()
        internals = _asyncua.StationInternals(user_manager=_asyncua.ValidatedChannels())
        internals.users = self.users
        internals.node_gate = self._gate if self.access is not None else None
        internals.clock = self.validator.clock
        internals.recheck_after = self.recheck_after
        server = _Server(iserver=internals)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(self.name)
        server.application_type = ua.ApplicationType.Server
        server.product_uri = PRODUCT_URI
        await server.set_application_uri(self.application_uri)
        server.set_security_policy(
            [_asyncua.policy_type(p) for p in self.policies], _asyncua.ReadOnlyRuleset()
        )
        tokens: list[type] = [ua.AnonymousIdentityToken] if self.anonymous else []
        if self.users is not None:
            tokens.append(ua.X509IdentityToken)
        server.set_identity_tokens(tokens)
        await server.load_certificate(self.identity.certificate_der(), format="der")
        await server.load_private_key(self.identity.private_key_der(), format="der")
        server.set_certificate_validator(self._validate_client)
        await self._populate(server)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(
                f"the station cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        self._server = server
        if server.bserver is not None:
            self.port = int(server.bserver.port)
        return self.endpoint

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> StationServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _validate_client(self, certificate: x509.Certificate, description: Any) -> None:
        """asyncua's certificate validator hook: the client of one CreateSession."""
        application_uri = str(getattr(description, "ApplicationUri", "") or "")
        der = certificate.public_bytes(Encoding.DER)
        address = _asyncua.peer_address()
        if _asyncua.channel_certificate() != der:
            _asyncua.accept_channel(None)
            reason = (
                "the certificate in CreateSession is not the one the secure channel was opened with"
            )
            verdict = self.validator.refuse(
                certificate,
                application_uri,
                reason,
                status="BadSecurityChecksFailed",
                address=address,
            )
            raise ServiceError(_asyncua.status_code(verdict.status))
        kind = getattr(description, "ApplicationType", None)
        verdict = await self.validator.check(
            certificate,
            application_uri,
            application_type=getattr(kind, "name", None),
            address=address,
        )
        if not verdict.accepted:
            _asyncua.accept_channel(None)
            raise ServiceError(_asyncua.status_code(verdict.status))
        _asyncua.accept_channel(der, verdict)

    def _gate(self, user: _asyncua.SessionUser, nodes: Sequence[ua.NodeId]) -> list[bool]:
        """The station's node gate: a sensor's nodes are seen (read, browsed to, found by name)
        only where the policies let the session's user read the sensor."""
        access = self.access
        answers: list[bool] = []
        for node in nodes:
            serial = self._serials.get(node)
            if serial is None:  # the server's own nodes (namespaces, status, the folders)
                answers.append(True)
            elif access is None:  # pragma: no cover - no gate is installed without access
                answers.append(False)
            else:
                answers.append(access.decide(user, serial).allowed)
        return answers

    async def _populate(self, server: _Server) -> None:
        ns = await server.register_namespace(NAMESPACE)
        folder: Node = await server.nodes.objects.add_object(ns, "SensorTests")
        self._serials = {}
        for result in self.results:
            sensor = await folder.add_object(ns, result.serial)
            nodes = [
                sensor,
                await sensor.add_variable(ns, "Verdict", result.verdict, ua.VariantType.String),
                await sensor.add_variable(
                    ns, "TestedAt", result.tested_at, ua.VariantType.DateTime
                ),
                await sensor.add_variable(
                    ns, "ReportSha256", result.report_sha256, ua.VariantType.String
                ),
            ]
            measurements = await sensor.add_object(ns, "Measurements")
            nodes.append(measurements)
            for measurement in result.measurements:
                variable = await measurements.add_variable(
                    ns, measurement.name, measurement.value, ua.VariantType.Double
                )
                unit = await variable.add_property(
                    ns, "Unit", measurement.unit, ua.VariantType.String
                )
                nodes += [variable, unit]
            for node in nodes:
                self._serials[node.nodeid] = result.serial
