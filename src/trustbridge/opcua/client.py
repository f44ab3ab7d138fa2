"""The customer's side: read a sensor's test results from a station, deciding on the station
with trustbridge's resolver instead of a trust folder.

The client opens a SignAndEncrypt secure channel to the certificate the station's endpoint
offers; asyncua refuses a CreateSession answer signed with another certificate, and hands the
station's certificate and ApplicationDescription to the client's validator before the session is
activated. A refusal ends the connection before anything is read. After the connection the
client checks that its validator accepted exactly the certificate the channel is encrypted to
(if asyncua had skipped the hook, the read fails).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.utils import ServiceError
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509

from trustbridge.errors import AccessDeniedError, InputError, NotFoundError, TrustbridgeError
from trustbridge.opcua import _asyncua
from trustbridge.opcua.certificates import PeerRefusedError, PeerRole
from trustbridge.opcua.identity import ApplicationIdentity, UserIdentity
from trustbridge.opcua.peers import PeerValidator, PeerVerdict
from trustbridge.opcua.policies import SecurityPolicy
from trustbridge.opcua.results import Measurement, SensorTestResult
from trustbridge.opcua.station import NAMESPACE

__all__ = [
    "ReadResult",
    "SessionRefusedError",
    "StationUnreachableError",
    "endpoint_host",
    "read_test_result",
]

_PRODUCT_URI = "urn:trustbridge:opcua:reader"
#: What a station answers an ActivateSession whose user it does not accept.
_USER_REFUSALS = frozenset(
    {"BadIdentityTokenRejected", "BadIdentityTokenInvalid", "BadUserSignatureInvalid"}
)


class _TokenPolicyRefusedError(UaError):
    """The station asks for user tokens signed under another policy than the channel's."""


class _Client(Client):
    """asyncua's client, signing a user token only under the channel's own security policy
    (a station could otherwise name a weaker one, or none, for the token)."""

    def server_policy(self, token_type: ua.UserTokenType) -> ua.UserTokenPolicy:
        policy = super().server_policy(token_type)
        if token_type == ua.UserTokenType.Certificate:
            channel = self.security_policy.URI
            if policy.SecurityPolicyUri != channel:
                raise _TokenPolicyRefusedError(
                    f"the station asks for user tokens signed under "
                    f"{policy.SecurityPolicyUri!r}, not under the channel's {channel}"
                )
        return policy


class SessionRefusedError(AccessDeniedError):
    """The station refused the session (it did not accept this client); ``status`` is the OPC UA
    status code it answered with."""

    def __init__(self, message: str, *, status: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class StationUnreachableError(TrustbridgeError):
    """The station does not answer (nothing listens, or it timed out)."""

    exit_code = 6


@dataclass(frozen=True)
class ReadResult:
    """What the client read, over which channel, and how it decided on the station."""

    endpoint: str
    security_policy: SecurityPolicy
    #: The client's verdict on the station (route and levels in its resolution).
    server: PeerVerdict
    result: SensorTestResult

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "security_policy": self.security_policy.value,
            "security_mode": "SignAndEncrypt",
            "server": self.server.to_json(),
            "result": self.result.to_json(),
        }


def endpoint_host(endpoint: str) -> str:
    """The host of an ``opc.tcp://HOST:PORT/...`` endpoint URL."""
    parts = urlsplit(endpoint)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise InputError(
            f"{endpoint!r} is not an OPC UA endpoint URL", hint="opc.tcp://HOST:PORT/PATH"
        )
    return parts.hostname


def _status_name(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return _asyncua.status_name(code) if isinstance(code, int) else type(exc).__name__


async def read_test_result(
    endpoint: str,
    *,
    identity: ApplicationIdentity,
    validator: PeerValidator,
    serial: str,
    policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256,
    timeout: float = 10.0,
    application_uri: str | None = None,
    user: UserIdentity | None = None,
) -> ReadResult:
    """Connect to the station at ``endpoint`` as ``identity``, decide on the station with
    ``validator`` (role :attr:`PeerRole.SERVER`), and read sensor ``serial``'s test results.

    Raises :class:`PeerRefusedError` where this client refused the station,
    :class:`SessionRefusedError` where the station refused this client,
    :class:`StationUnreachableError` where nothing answers, :class:`NotFoundError` for a serial
    the station does not know. ``application_uri`` overrides the URI the client describes
    itself with (its certificate's by default; a station refuses one the certificate lacks).
    The station's certificate must name the host of ``endpoint`` (OPC 10000-4 6.1.3), or the
    validator's :attr:`~PeerValidator.host` where it names one (a station reached through a
    forwarded address, say).

    ``user``: the person the session acts for (an X.509 user identity token, signed with the
    channel's security policy); without it the session is anonymous, the client application
    alone. A station that takes no user tokens, or refuses the person, refuses the session
    (:class:`SessionRefusedError`, ``BadIdentityTokenRejected``); one whose access policies do
    not let the session's user read the sensor answers ``BadUserAccessDenied``.
    """
    if validator.role is not PeerRole.SERVER:
        raise InputError("the client's validator must decide on servers")
    dialled = endpoint_host(endpoint)
    identity.check(PeerRole.CLIENT)
    _asyncua.quiet_asyncua()
    client = _Client(endpoint, timeout=timeout)
    client.name = client.description = identity.subject
    client.application_uri = application_uri or identity.application_uri
    client.product_uri = _PRODUCT_URI
    # This session's own verdicts: the validator may be shared by reads running at once.
    checked: list[PeerVerdict] = []

    async def check_server(certificate: x509.Certificate, description: Any) -> None:
        kind = getattr(description, "ApplicationType", None)
        verdict = await validator.check(
            certificate,
            str(getattr(description, "ApplicationUri", "") or ""),
            application_type=getattr(kind, "name", None),
            host=dialled,
        )
        checked.append(verdict)
        if not verdict.accepted:
            raise ServiceError(_asyncua.status_code(verdict.status))

    try:
        await client.set_security(
            _asyncua.policy_class(policy),
            identity.certificate_der(),
            identity.private_key_der(),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        client.certificate_validator = check_server
        if user is not None:
            client.user_certificate = user.certificate
            client.user_private_key = user.private_key
        await client.connect()
    except (OSError, TimeoutError) as exc:
        raise StationUnreachableError(
            f"the station at {endpoint} does not answer: {exc}",
            hint="is `trustbridge opcua serve` running there, and is the port right?",
        ) from None
    except _TokenPolicyRefusedError as exc:
        raise PeerRefusedError(
            f"this client refused the station's user token policy: {exc}",
            status="BadSecurityPolicyRejected",
            peer=endpoint,
        ) from None
    except (UaError, ServiceError) as exc:
        mine = [v for v in checked if not v.accepted]
        if mine:
            refusal = mine[-1]
            raise PeerRefusedError(
                f"this client refused the station {refusal.subject}: {refusal.reason}",
                status=refusal.status,
                peer=refusal.subject,
                reason=refusal.reason,
            ) from None
        status = _status_name(exc)
        if isinstance(exc, UaStatusCodeError | ServiceError):
            person = status in _USER_REFUSALS and user is not None
            raise SessionRefusedError(
                f"the station at {endpoint} refused the session"
                + (f" for the user {user.subject}" if person and user is not None else "")
                + f": {status}",
                status=status,
                hint="the station's log names the reason (it takes no user tokens, or its "
                "resolver did not accept the person's identity)"
                if person
                else "the station's log names the reason (its resolver did not accept this "
                "client's identity, or the application URI did not match)",
            ) from None
        raise StationUnreachableError(
            f"no {policy} SignAndEncrypt session with {endpoint}: {exc}",
        ) from None
    try:
        server = _checked_server(client, checked)
        result = await _read(client, serial, user)
    finally:
        await client.disconnect()
    return ReadResult(endpoint=endpoint, security_policy=policy, server=server, result=result)


def _checked_server(client: Client, verdicts: list[PeerVerdict]) -> PeerVerdict:
    """The accepted verdict on the certificate this session's channel is encrypted to."""
    channel = client.security_policy.peer_certificate
    fingerprint = hashlib.sha256(channel).hexdigest() if channel else None
    for verdict in verdicts:
        if verdict.accepted and verdict.fingerprint == fingerprint:
            return verdict
    raise PeerRefusedError(
        "the station's certificate was never checked in this session: refusing to read",
        status="BadSecurityChecksFailed",
        peer="the station",
    )


_PERSON_HINT = "; a person may read where the client alone may not (--user-cert, --user-key)"


async def _read(client: Client, serial: str, user: UserIdentity | None) -> SensorTestResult:
    try:
        ns = await client.get_namespace_index(NAMESPACE)
    except ValueError:
        raise NotFoundError(
            f"the server does not publish sensor test results (no namespace {NAMESPACE})"
        ) from None
    try:
        sensor: Node = await client.nodes.objects.get_child([f"{ns}:SensorTests", f"{ns}:{serial}"])
        verdict = await (await sensor.get_child(f"{ns}:Verdict")).read_value()
        tested_at = await (await sensor.get_child(f"{ns}:TestedAt")).read_value()
        digest = await (await sensor.get_child(f"{ns}:ReportSha256")).read_value()
        folder = await sensor.get_child(f"{ns}:Measurements")
        measurements = []
        for variable in await folder.get_children():
            name = (await variable.read_browse_name()).Name
            unit = await (await variable.get_child(f"{ns}:Unit")).read_value()
            measurements.append(Measurement(name, await variable.read_value(), unit))
    except UaStatusCodeError as exc:
        status = _status_name(exc)
        who = f"the user {user.subject}" if user is not None else "this client application"
        if status == "BadNoMatch":
            raise NotFoundError(
                f"the station shows no test results for sensor {serial!r} to {who}: it has "
                "none, or its access policies hide them",
                hint="a station that decides reads by its access policies shows a session only "
                "the sensors it may read; the station's log names the decision"
                + ("" if user is not None else _PERSON_HINT),
            ) from None
        if status == "BadUserAccessDenied":
            raise SessionRefusedError(
                f"the station's access policies do not let {who} read sensor {serial!r} ({status})",
                status=status,
                hint="the station's log names the policies and their reasons"
                + ("" if user is not None else _PERSON_HINT),
            ) from None
        raise SessionRefusedError(
            f"the station answered {status} to reading sensor {serial!r}", status=status
        ) from None
    if isinstance(tested_at, datetime) and tested_at.tzinfo is None:
        tested_at = tested_at.replace(tzinfo=UTC)  # OPC UA DateTime is UTC
    return SensorTestResult(
        serial=serial,
        verdict=verdict,
        tested_at=tested_at,
        report_sha256=digest,
        measurements=tuple(measurements),
    )
