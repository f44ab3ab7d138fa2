"""Application instance certificates: what trustbridge's RSA machine and software profiles give
OPC UA, and the checks a peer's certificate passes before its trust is resolved."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.homes import NOW
from tests.opcua.world import SESSION_CLOCK, OpcUaWorld, reader_subject, station_subject
from tests.pki.pkifactory import build_scenario_pki, issue_identity, organization_subject
from trustbridge.demo.opcua import _self_signed
from trustbridge.errors import InputError, KeyStoreError, NotFoundError, ProfileError
from trustbridge.opcua import (
    ApplicationIdentity,
    PeerRefusedError,
    PeerRole,
    PeerVerdict,
    check_instance_certificate,
    verify_peer,
)
from trustbridge.opcua.certificates import check_host
from trustbridge.pki.keys import KeyType, private_key_pem
from trustbridge.pki.profiles import subject_from_dict
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.resolver import Route
from trustbridge.trust.validation import RevocationMode


def test_rsa_machine_and_software_identities_are_application_instance_certificates(
    world: OpcUaWorld,
) -> None:
    # OPC UA Part 6 6.2.2: digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment;
    # serverAuth and clientAuth; the application URI (and the host) in the subjectAltName.
    for identity in (world.station, world.reader):
        certificate = identity.certificate
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert (usage.digital_signature, usage.content_commitment) == (True, True)
        assert (usage.key_encipherment, usage.data_encipherment) == (True, True)
        assert not usage.key_agreement and not usage.key_cert_sign
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        for role in (PeerRole.CLIENT, PeerRole.SERVER):
            check_instance_certificate(
                certificate, role=role, application_uri=identity.application_uri
            )
    san = world.station.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:hayabusa:eol-test-station:EOL-3"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert world.reader.application_uri == (
        "urn:trustbridge:software:VATDE-123456789:muster-quality-gateway-opc-ua-client:1.0.0"
    )


def test_ip_addresses_in_machine_and_software_subjects() -> None:
    station = station_subject()
    assert subject_from_dict(station.to_dict()) == station
    reader = subject_from_dict({**reader_subject().to_dict(), "ip_addresses": ["0:0::1"]})
    assert reader.alt_names()[-1] == x509.IPAddress(ipaddress.ip_address("::1"))
    assert reader.to_dict()["ip_addresses"] == ["::1"]  # kept in its normal form
    with pytest.raises(ProfileError, match=r"IP address 'host\.example' is not an IPv4 or IPv6"):
        replace(station, ip_addresses=("host.example",))


def test_certificates_opc_ua_cannot_use() -> None:
    pki = build_scenario_pki()
    ec = issue_identity(pki.devices, reader_subject(), key_type=KeyType.P256)
    with pytest.raises(PeerRefusedError, match="not RSA") as refused:
        check_instance_certificate(
            ec.certificate, role=PeerRole.CLIENT, application_uri=reader_subject().uri
        )
    assert refused.value.status == "BadCertificateInvalid"
    with pytest.raises(KeyStoreError, match="not RSA"):
        ApplicationIdentity(ec.signer, (ec.certificate,))
    organization = issue_identity(pki.people, organization_subject(), key_type=KeyType.RSA2048)
    with pytest.raises(PeerRefusedError, match="organization identity is no application") as no:
        check_instance_certificate(
            organization.certificate, role=PeerRole.SERVER, application_uri="urn:x"
        )
    assert no.value.status == "BadCertificateUseNotAllowed"


def test_the_application_uri_and_the_role(world: OpcUaWorld) -> None:
    certificate = world.reader.certificate
    with pytest.raises(PeerRefusedError, match="'urn:x' it describes itself with is not in") as e:
        check_instance_certificate(certificate, role=PeerRole.CLIENT, application_uri="urn:x")
    assert e.value.status == "BadCertificateUriInvalid"
    with pytest.raises(PeerRefusedError, match="describes itself as a Client application"):
        check_instance_certificate(
            certificate,
            role=PeerRole.SERVER,
            application_uri=world.reader.application_uri,
            application_type="Client",
        )
    # The demo's self-signed client has clientAuth only: it cannot be a server.
    client_only = _self_signed("urn:self", NOW).certificate
    with pytest.raises(PeerRefusedError, match="lacks serverAuth for a server"):
        check_instance_certificate(client_only, role=PeerRole.SERVER, application_uri="urn:self")


def test_the_host_a_client_dialled(world: OpcUaWorld) -> None:
    certificate = world.station.certificate
    check_host(certificate, "127.0.0.1")
    check_host(certificate, "LOCALHOST")
    with pytest.raises(PeerRefusedError, match="host ::1 is not among its certificate's DNS"):
        check_host(certificate, "::1")


def test_verify_peer_requires_revocation_and_a_minimum_level(world: OpcUaWorld) -> None:
    resolver = world.resolvers("jp", Route.BRIDGE)()

    def verify(min_level: str | None = None) -> PeerVerdict:
        return verify_peer(
            world.reader.certificate,
            role=PeerRole.CLIENT,
            application_uri=world.reader.application_uri,
            resolver=resolver,
            at=SESSION_CLOCK.now(),
            min_level=min_level,
        )

    verdict = verify()
    assert verdict.accepted and verdict.status == "Good"
    assert verdict.to_json()["route"] == "bridge"
    assert verdict.to_json()["reference_level"] == "itg/itg-loa2"
    with pytest.raises(PeerRefusedError, match="below the required itg/itg-loa3"):
        verify(min_level="itg-loa3")
    resolver.revocation = RevocationMode.UNSAFE_SOFT_FAIL
    with pytest.raises(PeerRefusedError, match="does not require revocation") as unsafe:
        verify()
    assert unsafe.value.status == "BadCertificateRevocationUnknown"


def test_an_identity_whose_key_is_not_its_certificates(world: OpcUaWorld) -> None:
    with pytest.raises(KeyStoreError, match="does not belong to the certificate"):
        ApplicationIdentity(FileSigner(world.station.signer.key, "x"), world.reader.chain)


def test_an_identity_kept_in_a_home(world: OpcUaWorld, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="has no OPC UA identity"):
        ApplicationIdentity.from_home(tmp_path)
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in world.reader.chain)
    passphrase = b"opc ua key passphrase"
    key = private_key_pem(world.reader.signer.key, passphrase)
    with pytest.raises(InputError, match="not PEM certificates"):
        ApplicationIdentity.install(tmp_path, b"junk", key, passphrase=passphrase)
    installed = ApplicationIdentity.install(tmp_path, chain, key, passphrase=passphrase)
    assert (tmp_path / "opcua" / "identity.key.pem").stat().st_mode & 0o777 == 0o600
    loaded = ApplicationIdentity.from_home(tmp_path, passphrase=passphrase)
    assert loaded.chain == installed.chain == world.reader.chain
    assert loaded.application_uri == world.reader.application_uri
