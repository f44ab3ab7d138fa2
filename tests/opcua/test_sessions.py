"""OPC UA sessions on loopback between Hayabusa's test station (JP) and Muster's reader (DE),
each deciding on the other with the trust resolver: through the bridge, through the trust lists,
in both security policies; and the peers each side turns away, with the reason logged."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua import MessageSecurityMode
from asyncua.ua.uaerrors import UaError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from tests.opcua.conftest import (
    OTHER,
    RESULT,
    SERIAL,
    RunningStation,
    read,
    read_verdict,
    running,
)
from tests.opcua.world import STATION_URI, OpcUaWorld, revoke
from trustbridge.errors import NotFoundError
from trustbridge.opcua import ApplicationIdentity, PeerRefusedError, PeerRole, SecurityPolicy
from trustbridge.opcua.client import (
    SessionRefusedError,
    StationUnreachableError,
    read_test_result,
)
from trustbridge.trust.resolver import Route


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="trustbridge.opcua")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trustbridge.opcua" and r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# -- across the border -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(SecurityPolicy))
@pytest.mark.parametrize("route", [Route.BRIDGE, Route.TRUST_LIST])
def test_the_reader_reads_test_results_across_the_border_by_each_route(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    list_station: RunningStation,
    route: Route,
    policy: SecurityPolicy,
) -> None:
    station = bridge_station if route is Route.BRIDGE else list_station
    before = len(station.station.verdicts)
    outcome = read(world, station, route=route, policy=policy)
    assert outcome.result == RESULT
    assert outcome.security_policy is policy
    # The reader resolved the Japanese station by the route, at its Japanese level.
    server = outcome.server
    assert server.accepted and server.resolution is not None
    assert server.resolution.route is route
    assert server.application_uri == STATION_URI
    assert str(server.resolution.holder_level) == "jp/jp-level2"
    assert str(server.resolution.reference_level) == "itg/itg-loa2"
    # ... and the station the German reader, by the same route.
    (client,) = station.station.verdicts[before:]
    assert client.accepted and client.resolution is not None
    assert client.resolution.route is route
    assert client.subject == world.reader.subject
    assert str(client.resolution.holder_level) == "de/de-substantial"


def test_a_station_whose_chain_is_rsa_signed_as_opc_ua_policies_name_it(
    world: OpcUaWorld, list_station: RunningStation
) -> None:
    certificate, issuer = world.rsa_station.chain[:2]
    assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, rsa.RSAPublicKey) and issuer_key.key_size == 3072
    outcome = read(world, list_station, route=Route.TRUST_LIST)
    assert outcome.server.fingerprint == certificate.fingerprint(hashes.SHA256()).hex()


def test_a_second_sensor_and_an_unknown_one(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    assert read(world, bridge_station, serial=OTHER.serial).result == OTHER
    with pytest.raises(NotFoundError, match="no test results for sensor 'HPS200-999999'"):
        read(world, bridge_station, serial="HPS200-999999")


# -- clients the station turns away ------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "reason"),
    [
        ("self_signed", "BadCertificateUntrusted", "is not trusted"),
        ("outsider", "BadCertificateUntrusted", "is not trusted"),
        ("revoked_reader", "BadCertificateRevoked", "revoked"),
    ],
)
def test_the_station_refuses_a_client_it_cannot_trust(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    warnings: pytest.LogCaptureFixture,
    who: str,
    status: str,
    reason: str,
) -> None:
    identity: ApplicationIdentity = getattr(world, who)
    with pytest.raises(SessionRefusedError, match=f"refused the session: {status}") as refused:
        read(world, bridge_station, identity=identity, policy=SecurityPolicy.AES256_SHA256_RSAPSS)
    assert refused.value.status == status
    verdict = bridge_station.station.refusals[-1]
    assert verdict.subject == identity.subject
    assert verdict.status == status
    assert reason in verdict.reason
    # The log names the peer by what it cannot choose too: its certificate and its address.
    (line,) = logged(warnings, identity.subject)
    fingerprint = identity.certificate.fingerprint(hashes.SHA256()).hex()[:16]
    assert line.startswith(
        f"refused OPC UA client {identity.subject} [sha256 {fingerprint}] from 127.0.0.1:"
    )
    assert line.endswith(f" ({status}): {verdict.reason}")
    assert verdict.address is not None and line.count(verdict.address) == 1


def test_the_station_refuses_a_client_whose_application_uri_is_not_in_its_certificate(
    world: OpcUaWorld, bridge_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SessionRefusedError, match="BadCertificateUriInvalid"):
        read(world, bridge_station, application_uri="urn:muster:someone-else")
    verdict = bridge_station.station.refusals[-1]
    assert "application URI 'urn:muster:someone-else'" in verdict.reason
    assert world.reader.application_uri in verdict.reason
    assert logged(warnings, "urn:muster:someone-else")


def test_a_revoked_reader_is_refused_by_both_routes(
    world: OpcUaWorld, list_station: RunningStation
) -> None:
    with pytest.raises(SessionRefusedError, match="BadCertificateRevoked"):
        read(world, list_station, route=Route.TRUST_LIST, identity=world.revoked_reader)
    assert "revoked" in list_station.station.refusals[-1].reason


class _SwappingClient(Client):
    """Opens the secure channel with its own key and certificate, then names another (trusted)
    certificate in CreateSession."""

    borrowed: bytes = b""

    async def create_session(self):  # type: ignore[no-untyped-def]
        self.security_policy.host_certificate = self.borrowed
        return await super().create_session()


def test_a_client_naming_another_certificate_in_create_session_is_refused(
    world: OpcUaWorld, bridge_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    impostor = world.self_signed

    async def attempt() -> None:
        client = _SwappingClient(bridge_station.endpoint, timeout=20)
        client.application_uri = world.reader.application_uri
        client.borrowed = world.reader.certificate_der()
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            impostor.certificate_der(),
            impostor.private_key_der(),
            mode=MessageSecurityMode.SignAndEncrypt,
        )
        await client.connect()

    with pytest.raises(UaError):
        asyncio.run(attempt())
    verdict = bridge_station.station.refusals[-1]
    assert verdict.status == "BadSecurityChecksFailed"
    assert "not the one the secure channel was opened with" in verdict.reason
    assert logged(warnings, "not the one the secure channel was opened with")


class _UncheckedClient(Client):
    """Names no certificate in CreateSession (asyncua's server then skips its validator) and
    does not check the answer: what a hostile client may do."""

    async def create_session(self) -> ua.CreateSessionResult:
        response = await self.uaclient.create_session(_session_parameters(self))
        self._server_nonce = response.ServerNonce
        self._policy_ids = response.ServerEndpoints[0].UserIdentityTokens
        return response


async def _secure(
    client: Client,
    identity: ApplicationIdentity,
    mode: MessageSecurityMode = MessageSecurityMode.SignAndEncrypt,
    *,
    server_certificate: bytes | None = None,
) -> None:
    """Basic256Sha256 with ``identity``'s certificate and key."""
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        identity.certificate_der(),
        identity.private_key_der(),
        server_certificate=server_certificate,
        mode=mode,
    )


def _session_parameters(client: Client) -> ua.CreateSessionParameters:
    description = ua.ApplicationDescription()
    description.ApplicationUri = "urn:nobody:client"
    description.ApplicationType = ua.ApplicationType.Client
    params = ua.CreateSessionParameters()
    params.ClientDescription = description
    params.ClientNonce = os.urandom(32)
    params.EndpointUrl = client.server_url.geturl()
    params.SessionName = "unchecked"
    params.RequestedSessionTimeout = 60_000
    return params


def _sessions(station: RunningStation) -> int:
    """The sessions the station's asyncua keeps (activated or not)."""
    server = station.station._server
    assert server is not None
    return len(server.iserver._external_sessions)


@pytest.mark.parametrize(
    ("secure", "status", "refusal"),
    [
        (True, "BadSecurityChecksFailed", "CreateSession naming no client certificate"),
        (False, "BadSecurityModeRejected", "CreateSession on a channel without security"),
    ],
    ids=["encrypted-channel", "no-security"],
)
def test_a_session_whose_client_certificate_would_go_unchecked_is_never_created(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    warnings: pytest.LogCaptureFixture,
    secure: bool,
    status: str,
    refusal: str,
) -> None:
    # asyncua opens a channel without security whatever the endpoints say, and skips the
    # validator where CreateSession names no certificate; each try used to leave a session
    # behind for good (several per connection).
    async def attempt() -> None:
        client = _UncheckedClient(bridge_station.endpoint, timeout=20)
        if secure:
            await _secure(client, world.self_signed)
        await client.connect_socket()
        try:
            await client.send_hello()
            await client.open_secure_channel()
            # Then: one session per connection (where one was asked for on a secure channel).
            again = "BadTooManySessions" if secure else status
            for expected in (status, again, again):
                with pytest.raises(UaError, match=expected):
                    await client.create_session()
            assert _sessions(bridge_station) == before  # nothing kept, the connection open
        finally:
            client.disconnect_socket()

    before = _sessions(bridge_station)
    verdicts = len(bridge_station.station.verdicts)
    asyncio.run(attempt())
    assert len(bridge_station.station.verdicts) == verdicts  # the validator never ran
    assert logged(warnings, f"refused OPC UA {refusal}")


def test_a_sign_only_channel_is_not_opened(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    async def attempt() -> None:
        client = Client(bridge_station.endpoint, timeout=2)
        client.application_uri = world.reader.application_uri
        station = world.station.certificate_der()
        await _secure(client, world.reader, MessageSecurityMode.Sign, server_certificate=station)
        try:
            await client.connect()
        finally:
            client.disconnect_socket()

    with pytest.raises((UaError, TimeoutError)):  # asyncua's server just drops the request
        asyncio.run(attempt())


async def _reader_session(world: OpcUaWorld, station: RunningStation) -> Client:
    """Muster's reader with a live, activated session (as a long-running client keeps one)."""
    client = Client(station.endpoint, timeout=20)
    client.application_uri = world.reader.application_uri
    await _secure(client, world.reader)
    await client.connect()
    return client


def test_a_live_session_cannot_be_taken_over_from_another_connection(
    world: OpcUaWorld, bridge_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    # asyncua reattaches any live session whose authentication token (a counter: 1000, 1001,
    # ...) an ActivateSession names on a new connection, and keeps it attached even when the
    # activation is refused. On a channel without security (no signature to make over the
    # session's nonce), a client without any certificate read on the reader's session. The
    # station refuses to move sessions between connections.
    async def attempt() -> None:
        victim = await _reader_session(world, bridge_station)
        try:
            token = victim.uaclient.session.authentication_token
            attacker = Client(bridge_station.endpoint, timeout=20)
            await attacker.connect_socket()
            try:
                await attacker.send_hello()
                await attacker.open_secure_channel()
                attacker.uaclient.session.restore_authentication_token(token)
                activation = ua.ActivateSessionParameters()
                activation.UserIdentityToken = ua.AnonymousIdentityToken()
                activation.UserIdentityToken.PolicyId = "anonymous"
                with pytest.raises(UaError, match="BadSessionIdInvalid"):
                    await attacker.uaclient.activate_session(activation)
                with pytest.raises(UaError, match="BadUserAccessDenied"):
                    await read_verdict(attacker)
            finally:
                attacker.disconnect_socket()
            assert await read_verdict(victim) == RESULT.verdict  # the reader's session lives on
        finally:
            await victim.disconnect()

    asyncio.run(attempt())
    assert logged(warnings, "refused OPC UA ActivateSession of a session created on another")


def test_one_session_per_connection(world: OpcUaWorld, bridge_station: RunningStation) -> None:
    async def attempt() -> None:
        client = await _reader_session(world, bridge_station)
        try:
            before = _sessions(bridge_station)
            with pytest.raises(UaError, match="BadTooManySessions"):
                await client.uaclient.create_session(_session_parameters(client))
            assert _sessions(bridge_station) == before
        finally:
            await client.disconnect()

    asyncio.run(attempt())


def test_nobody_registers_servers_with_the_station(bridge_station: RunningStation) -> None:
    # Without a session, on a channel without security: asyncua would list it in FindServers.
    async def attempt() -> list[str]:
        client = Client(bridge_station.endpoint, timeout=20)
        await client.connect_socket()
        try:
            await client.send_hello()
            await client.open_secure_channel()
            server = ua.RegisteredServer()
            server.ServerUri = "urn:someone:else"
            server.ServerNames = [ua.LocalizedText("Someone Else")]
            server.DiscoveryUrls = ["opc.tcp://192.0.2.7:4840"]
            server.IsOnline = True
            with pytest.raises(UaError, match="BadServiceUnsupported"):
                await client.uaclient.register_server(server)
            servers = await client.uaclient.find_servers(ua.FindServersParameters())
        finally:
            client.disconnect_socket()
        return [s.ApplicationUri for s in servers]

    assert asyncio.run(attempt()) == [STATION_URI]


# -- stations the reader turns away -------------------------------------------------------------


@pytest.fixture
def doomed_station(world: OpcUaWorld) -> Iterator[RunningStation]:
    with running(world, world.doomed_station, Route.BRIDGE) as station:
        yield station


def test_revoking_the_station_makes_the_next_connection_fail(
    world: OpcUaWorld, doomed_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    assert read(world, doomed_station).result == RESULT
    revoke(world.linked.jp, world.doomed_station)
    with pytest.raises(PeerRefusedError, match="this client refused the station") as refused:
        read(world, doomed_station, policy=SecurityPolicy.AES256_SHA256_RSAPSS)
    assert refused.value.status == "BadCertificateRevoked"
    assert "revoked" in refused.value.message
    assert logged(warnings, f"refused OPC UA server {world.doomed_station.subject}")


def test_the_reader_refuses_a_station_that_claims_another_application_uri(
    world: OpcUaWorld, warnings: pytest.LogCaptureFixture
) -> None:
    claimed = "urn:hayabusa:eol-test-station:EOL-4"
    with (
        running(world, world.station, Route.BRIDGE, application_uri=claimed) as station,
        pytest.raises(PeerRefusedError) as refused,
    ):
        read(world, station)
    assert refused.value.status == "BadCertificateUriInvalid"
    assert f"the application URI '{claimed}' it describes itself with is not in its" in (
        refused.value.message
    )
    assert logged(warnings, f"refused OPC UA server {world.station.subject}")


def test_the_reader_insists_on_the_station_it_expects_and_its_host(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    with pytest.raises(PeerRefusedError, match="is not the expected 'urn:hayabusa:other'"):
        read(world, bridge_station, expected_uri="urn:hayabusa:other")
    with pytest.raises(PeerRefusedError, match=r"host 192\.0\.2\.7 is not among") as refused:
        read(world, bridge_station, host="192.0.2.7")
    assert refused.value.status == "BadCertificateHostNameInvalid"
    # The station's own name for itself passes.
    assert read(world, bridge_station, expected_uri=STATION_URI).result == RESULT


def test_the_reader_checks_the_host_it_dialled_by_default(world: OpcUaWorld) -> None:
    # A station whose certificate names the host localhost only (Muster's reader identity,
    # which has serverAuth too), dialled by its address and then by its name.
    with running(world, world.reader, Route.BRIDGE) as station:
        with pytest.raises(PeerRefusedError, match=r"host 127\.0\.0\.1 is not among") as no:
            read(world, station, host=None)
        assert no.value.status == "BadCertificateHostNameInvalid"
        by_name = station.endpoint.replace("//127.0.0.1:", "//localhost:")
        assert read(world, station, host=None, endpoint=by_name).result == RESULT


def test_nothing_listening_is_unreachable(world: OpcUaWorld) -> None:
    from trustbridge.node.launcher import free_port

    validator = world.validator("de", Route.BRIDGE, PeerRole.SERVER)
    with pytest.raises(StationUnreachableError, match="does not answer"):
        asyncio.run(
            read_test_result(
                f"opc.tcp://127.0.0.1:{free_port()}/trustbridge/station",
                identity=world.reader,
                validator=validator,
                serial=SERIAL,
                timeout=5,
            )
        )
