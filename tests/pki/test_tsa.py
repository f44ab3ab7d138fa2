"""The RFC 3161 time-stamp authority: interop with rfc3161-client and openssl, rejections,
token contents, and the TSA certificate check."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from tests.pki.pkifactory import AT, build_scenario_pki
from tests.tools import openssl
from trustbridge.clock import FixedClock
from trustbridge.errors import InputError, ProfileError
from trustbridge.pki.ca import ServiceKind, self_signed_certificate
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import key_usage
from trustbridge.pki.signers import FileSigner
from trustbridge.pki.tsa import TimestampAuthority, check_tsa_certificate

#: The pinned time of every test here, with a fraction of a second to see it kept.
NOW = datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
#: A test TSA policy.
POLICY = x509.ObjectIdentifier("2.25.213387346427436532913617418453718301781")
OTHER_POLICY = x509.ObjectIdentifier("2.25.1")
DATA = b"assembly line 4, firmware 2.7.1, bill of materials"
SHA256 = "2.16.840.1.101.3.4.2.1"
TIME_STAMPING = ExtendedKeyUsageOID.TIME_STAMPING
TSA_KEY_TYPES = (KeyType.P256, KeyType.P384, KeyType.RSA2048)


# -- a small PKI: a P-256 root and TSA certificates under it ------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rheintal Trust Services GmbH"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class Root:
    """A self-signed P-256 root CA."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def build(cls, common_name: str = "Test Root CA") -> Root:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self_signed_certificate(
            FileSigner(key),
            _name(common_name),
            not_before=NOW - timedelta(days=30),
            not_after=NOW + timedelta(days=3650),
            ca=True,
            extensions=(
                (key_usage("key_cert_sign", "crl_sign"), True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            ),
        )
        return cls(certificate, key)

    def issue_tsa(
        self,
        key: CertificateIssuerPrivateKeyTypes,
        *,
        purposes: Sequence[x509.ObjectIdentifier] | None = (TIME_STAMPING,),
        eku_critical: bool = True,
        not_after: datetime = NOW + timedelta(days=365),
    ) -> x509.Certificate:
        """A TSA certificate; ``purposes=None`` leaves the extended key usage out."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("Rheintal Time-Stamping Unit 1"))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage("digital_signature"), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if purposes is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), eku_critical)
        return builder.sign(self.key, hashes.SHA256())


@dataclass(frozen=True)
class Tsa:
    """A time-stamp authority under test with its certificate and key."""

    authority: TimestampAuthority
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @classmethod
    def under(cls, root: Root, key: CertificateIssuerPrivateKeyTypes) -> Tsa:
        certificate = root.issue_tsa(key)
        return cls(_authority(root, key, certificate=certificate), certificate, key)


def _authority(
    root: Root,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    certificate: x509.Certificate | None = None,
    **options: Any,
) -> TimestampAuthority:
    return TimestampAuthority(
        signer=FileSigner(key, source="test-tsa"),
        certificate=certificate or root.issue_tsa(key),
        policy=POLICY,
        clock=FixedClock(NOW),
        **options,
    )


@pytest.fixture(scope="module")
def root() -> Root:
    return Root.build()


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, CertificateIssuerPrivateKeyTypes]:
    return {key_type: generate_private_key(key_type) for key_type in TSA_KEY_TYPES}


@pytest.fixture(scope="module", params=TSA_KEY_TYPES, ids=str)
def any_tsa(
    request: pytest.FixtureRequest,
    root: Root,
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
) -> Tsa:
    """A TSA for each supported key type."""
    return Tsa.under(root, keys[request.param])


@pytest.fixture(scope="module")
def tsa(root: Root, keys: dict[KeyType, CertificateIssuerPrivateKeyTypes]) -> Tsa:
    """The P-256 TSA."""
    return Tsa.under(root, keys[KeyType.P256])


# -- decoding with asn1crypto --------------------------------------------------------------------


class _Response(core.Sequence):  # type: ignore[misc]
    """TimeStampResp with the optional token RFC 3161 2.4.2 has; asn1crypto's requires it."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _decode(response_der: bytes) -> _Response:
    response: _Response = _Response.load(response_der, strict=True)
    return response


def _signed_data(response_der: bytes) -> cms.SignedData:
    response = _decode(response_der)
    assert response["status"]["status"].native == "granted"
    return response["time_stamp_token"]["content"]


def _tst_info(response_der: bytes) -> tsp.TSTInfo:
    return _signed_data(response_der)["encap_content_info"]["content"].parsed


def _request(
    *,
    digest: bytes = hashlib.sha256(DATA).digest(),
    algorithm: str = SHA256,
    version: int = 1,
    policy: x509.ObjectIdentifier | None = None,
    nonce: int | None = None,
    cert_req: bool = True,
    extensions: Sequence[str] | None = None,
) -> bytes:
    """A DER TimeStampReq made with asn1crypto, for requests other clients will not make."""
    fields: dict[str, Any] = {
        "version": version,
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy.dotted_string
    if nonce is not None:
        fields["nonce"] = nonce
    if extensions is not None:
        fields["extensions"] = [
            {"extn_id": oid, "critical": False, "extn_value": b"\x05\x00"} for oid in extensions
        ]
    der: bytes = tsp.TimeStampReq(fields).dump()
    return der


# -- 1. rfc3161-client -----------------------------------------------------------------------------


@pytest.mark.parametrize("hash_algorithm", [HashAlgorithm.SHA256, HashAlgorithm.SHA512])
def test_rfc3161_client_verifies_a_token(
    any_tsa: Tsa, root: Root, hash_algorithm: HashAlgorithm
) -> None:
    request = TimestampRequestBuilder().data(DATA).hash_algorithm(hash_algorithm).build()

    response = decode_timestamp_response(any_tsa.authority.respond(request.as_bytes()))

    assert response.status == PKIStatus.GRANTED
    info = response.tst_info
    assert info.nonce == request.nonce
    assert info.policy == POLICY
    assert info.message_imprint.hash_algorithm == request.message_imprint.hash_algorithm
    assert info.message_imprint.message == request.message_imprint.message
    # rfc3161-client drops the fraction of a second that the token carries
    assert info.gen_time == NOW.replace(microsecond=0)
    # the request named no policy, so from_request leaves it unchecked: ask for ours
    verifier = (
        VerifierBuilder.from_request(request)
        .policy_id(POLICY)
        .add_root_certificate(root.certificate)
    ).build()
    assert verifier.verify_message(response, DATA)
    with pytest.raises(VerificationError, match="Mismatch between messages"):
        verifier.verify_message(response, DATA + b"!")


def test_rfc3161_client_refuses_a_token_under_another_root(tsa: Tsa) -> None:
    request = TimestampRequestBuilder().data(DATA).build()
    response = decode_timestamp_response(tsa.authority.respond(request.as_bytes()))
    stranger = Root.build("Stranger Root CA")

    verifier = VerifierBuilder.from_request(request).add_root_certificate(stranger.certificate)

    with pytest.raises(VerificationError, match="certificates"):
        verifier.build().verify_message(response, DATA)


def test_rfc3161_client_verifies_without_embedded_certificate(tsa: Tsa, root: Root) -> None:
    request = TimestampRequestBuilder().data(DATA).cert_request(cert_request=False).build()

    response = decode_timestamp_response(tsa.authority.respond(request.as_bytes()))

    assert response.signed_data.certificates == set()
    verifier = (
        VerifierBuilder.from_request(request)
        .tsa_certificate(tsa.certificate)
        .add_root_certificate(root.certificate)
        .build()
    )
    assert verifier.verify_message(response, DATA)


# -- 2. openssl ts -----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.RSA2048], ids=str)
def test_openssl_query_reply_and_verify(
    tmp_path: Path,
    root: Root,
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
    key_type: KeyType,
) -> None:
    unit = Tsa.under(root, keys[key_type])
    data, query, reply = tmp_path / "data.bin", tmp_path / "req.tsq", tmp_path / "resp.tsr"
    root_pem, tsa_pem = tmp_path / "root.pem", tmp_path / "tsa.pem"
    data.write_bytes(DATA)
    root_pem.write_bytes(root.certificate.public_bytes(Encoding.PEM))
    tsa_pem.write_bytes(unit.certificate.public_bytes(Encoding.PEM))
    made = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert made.returncode == 0, made.stderr

    reply.write_bytes(unit.authority.respond(query.read_bytes()))

    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert shown.returncode == 0, shown.stderr
    assert "Status: Granted." in shown.stdout
    assert f"Policy OID: {POLICY.dotted_string}" in shown.stdout
    assert "Time stamp: Jun  1 12:30:15.123456 2026 GMT" in shown.stdout
    assert "Accuracy: 0x01 seconds" in shown.stdout
    assert "TSA: DirName:" in shown.stdout
    # openssl checks the chain at the current time unless told otherwise
    trust = ("-CAfile", root_pem, "-untrusted", tsa_pem, "-attime", str(int(NOW.timestamp())))
    for source in (("-data", data), ("-queryfile", query)):  # -queryfile also checks the nonce
        verified = openssl("ts", "-verify", *source, "-in", reply, *trust)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "Verification: OK" in verified.stdout

    data.write_bytes(DATA + b"!")
    refused = openssl("ts", "-verify", "-data", data, "-in", reply, *trust)
    assert refused.returncode != 0
    assert "Verification: FAILED" in refused.stdout


# -- 3. rejections -------------------------------------------------------------------------------

REJECTIONS = {
    "garbage": (b"this is not a time-stamp request", "bad_data_format", "not a DER-encoded"),
    "empty": (b"", "bad_data_format", "not a DER-encoded"),
    "truncated": (_request()[:-5], "bad_data_format", "not a DER-encoded"),
    "trailing-data": (_request() + b"\x00\x00", "bad_data_format", "not a DER-encoded"),
    "version-2": (_request(version=2), "bad_request", "version 2"),
    "unknown-hash": (_request(algorithm="1.2.3.4.5"), "bad_alg", "hash algorithm 1.2.3.4.5"),
    "sha1": (
        _request(algorithm="1.3.14.3.2.26", digest=hashlib.sha1(DATA).digest()),  # noqa: S324
        "bad_alg",
        "SHA-256, SHA-384 or SHA-512",
    ),
    "short-imprint": (_request(digest=b"\x01" * 31), "bad_data_format", "31 bytes long"),
    "sha384-with-32-byte-imprint": (
        _request(algorithm="2.16.840.1.101.3.4.2.2"),
        "bad_data_format",
        "SHA-384 digest is 48 bytes",
    ),
    "other-policy": (
        _request(policy=OTHER_POLICY),
        "unaccepted_policy",
        f"policy {OTHER_POLICY.dotted_string}",
    ),
    "extension": (
        _request(extensions=["1.2.3.4"]),
        "unaccepted_extensions",
        "does not support: 1.2.3.4",
    ),
    "empty-extensions": (_request(extensions=[]), "bad_data_format", "empty extensions"),
}


@pytest.mark.parametrize(
    ("request_der", "failure", "text"), REJECTIONS.values(), ids=REJECTIONS.keys()
)
def test_rejects_a_bad_request(tsa: Tsa, request_der: bytes, failure: str, text: str) -> None:
    response = _decode(tsa.authority.respond(request_der))

    status = response["status"]
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {failure}
    (status_string,) = status["status_string"].native
    assert text in status_string
    assert status_string.endswith(".")
    assert isinstance(response["time_stamp_token"], core.Void)


def test_openssl_reads_a_rejection(tmp_path: Path, tsa: Tsa) -> None:
    reply = tmp_path / "resp.tsr"
    reply.write_bytes(tsa.authority.respond(_request(algorithm="1.2.3.4.5")))

    shown = openssl("ts", "-reply", "-in", reply, "-text")

    assert shown.returncode == 0, shown.stderr
    assert "Status: Rejected." in shown.stdout
    assert "Status description: The message imprint uses hash algorithm 1.2.3.4.5" in shown.stdout
    assert "Failure info: unrecognized or unsupported algorithm identifier" in shown.stdout
    assert "Not included." in shown.stdout


def test_rejection_is_read_by_rfc3161_client(tsa: Tsa) -> None:
    response = decode_timestamp_response(tsa.authority.respond(_request(policy=OTHER_POLICY)))

    assert response.status == PKIStatus.REJECTION
    assert "policy" in response.status_string[0]


def test_grants_a_request_for_our_policy(tsa: Tsa) -> None:
    assert _tst_info(tsa.authority.respond(_request(policy=POLICY)))["policy"].dotted == (
        POLICY.dotted_string
    )


def test_expired_tsa_certificate_issues_no_token(
    root: Root, keys: dict[KeyType, CertificateIssuerPrivateKeyTypes]
) -> None:
    key = keys[KeyType.P256]
    expired = root.issue_tsa(key, not_after=NOW - timedelta(seconds=1))
    authority = _authority(root, key, certificate=expired)

    status = _decode(authority.respond(_request()))["status"]

    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"system_failure"}
    assert "not valid at 2026-06-01T12:30:15.123456+00:00" in status["status_string"].native[0]


def test_never_raises_on_mangled_requests(tsa: Tsa) -> None:
    valid = _request(policy=POLICY, nonce=2**63 + 7)
    mangled = [valid[:cut] for cut in range(len(valid))]
    mangled += [valid[:i] + bytes([valid[i] ^ 0xFF]) + valid[i + 1 :] for i in range(len(valid))]

    # rfc3161-client parses strict DER, and quickly
    statuses = {decode_timestamp_response(tsa.authority.respond(der)).status for der in mangled}

    assert statuses <= {PKIStatus.GRANTED, PKIStatus.REJECTION}
    assert PKIStatus.REJECTION in statuses


# -- 4. token contents -----------------------------------------------------------------------------


def test_gen_time_is_the_clock_time(tsa: Tsa) -> None:
    assert _tst_info(tsa.authority.respond(_request()))["gen_time"].native == NOW


def test_serial_numbers_are_random_and_long(tsa: Tsa) -> None:
    serials = {_tst_info(tsa.authority.respond(_request()))["serial_number"].native for _ in "ab"}

    assert len(serials) == 2
    assert all(2**64 <= serial < 2**160 for serial in serials)


@pytest.mark.parametrize("nonce", [None, 1, 2**64 - 1, 2**200 + 3])
def test_nonce_is_echoed(tsa: Tsa, nonce: int | None) -> None:
    assert _tst_info(tsa.authority.respond(_request(nonce=nonce)))["nonce"].native == nonce


def test_token_names_the_request_and_the_tsa(tsa: Tsa) -> None:
    info = _tst_info(tsa.authority.respond(_request()))

    assert info["version"].native == "v1"
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].dotted == SHA256
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DATA).digest()
    assert info["ordering"].native is False
    assert info["tsa"].name == "directory_name"
    assert info["tsa"].chosen.untag().dump() == tsa.certificate.subject.public_bytes()


@pytest.mark.parametrize(
    ("accuracy_ms", "expected"),
    [
        (1000, {"seconds": 1, "millis": None, "micros": None}),
        (2250, {"seconds": 2, "millis": 250, "micros": None}),
        (5, {"seconds": None, "millis": 5, "micros": None}),
        (None, None),
    ],
)
def test_accuracy(
    root: Root,
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
    accuracy_ms: int | None,
    expected: dict[str, int | None] | None,
) -> None:
    authority = _authority(root, keys[KeyType.P256], accuracy_ms=accuracy_ms)

    assert _tst_info(authority.respond(_request()))["accuracy"].native == expected


def test_signed_attributes_bind_the_token_and_the_certificate(tsa: Tsa) -> None:
    signed_data = _signed_data(tsa.authority.respond(_request()))
    (signer_info,) = signed_data["signer_infos"]
    attributes = {
        attribute["type"].native: attribute["values"][0]
        for attribute in signer_info["signed_attrs"]
    }
    tst_info_der = signed_data["encap_content_info"]["content"].parsed.dump()

    assert signed_data["version"].native == "v3"
    assert signer_info["sid"].name == "issuer_and_serial_number"
    assert signer_info["sid"].chosen["serial_number"].native == tsa.certificate.serial_number
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    assert set(attributes) == {"content_type", "message_digest", "signing_certificate_v2"}
    assert attributes["content_type"].native == "tst_info"
    assert attributes["message_digest"].native == hashlib.sha256(tst_info_der).digest()
    (cert_id,) = attributes["signing_certificate_v2"]["certs"]
    assert cert_id["hash_algorithm"]["algorithm"].native == "sha256"
    assert (
        cert_id["cert_hash"].native
        == hashlib.sha256(tsa.certificate.public_bytes(Encoding.DER)).digest()
    )
    assert cert_id["issuer_serial"]["serial_number"].native == tsa.certificate.serial_number


@pytest.mark.parametrize(
    ("cert_req", "include_chain", "expected"),
    [(False, True, 0), (True, False, 1), (True, True, 2)],
)
def test_certificates_follow_cert_req_and_include_chain(
    root: Root,
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
    cert_req: bool,
    include_chain: bool,
    expected: int,
) -> None:
    key = keys[KeyType.P256]
    certificate = root.issue_tsa(key)
    authority = _authority(
        root,
        key,
        certificate=certificate,
        chain=[root.certificate],
        include_chain=include_chain,
    )

    certificates = _signed_data(authority.respond(_request(cert_req=cert_req)))["certificates"]

    # a SET OF in DER: sorted by encoding, not in the order given
    ders = {choice.chosen.dump() for choice in certificates} if expected else set()
    wanted = [certificate, root.certificate][:expected]
    assert ders == {item.public_bytes(Encoding.DER) for item in wanted}


# -- 5. the TSA certificate --------------------------------------------------------------------


def test_a_timestamping_only_critical_certificate_passes(tsa: Tsa) -> None:
    check_tsa_certificate(tsa.certificate)


def test_a_ca_issued_tsa_service_certificate_serves_under_the_scenario_root() -> None:
    pki = build_scenario_pki()
    key = generate_private_key(KeyType.P256)
    certificate = pki.people.issue_service(
        service=ServiceKind.TSA, public_key=key.public_key(), at=AT, lifetime=timedelta(days=365)
    )
    authority = TimestampAuthority(
        signer=FileSigner(key),
        certificate=certificate,
        chain=[pki.people.certificate],
        policy=POLICY,
        clock=FixedClock(AT + timedelta(hours=1)),
    )
    request = TimestampRequestBuilder().data(DATA).build()

    response = decode_timestamp_response(authority.respond(request.as_bytes()))

    # the issuing CA comes from the token itself: the verifier knows only the root
    verifier = VerifierBuilder.from_request(request).add_root_certificate(pki.root.certificate)
    assert verifier.build().verify_message(response, DATA)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eku_critical": False}, "non-critical extended key usage"),
        (
            {"purposes": (ExtendedKeyUsageOID.SERVER_AUTH, TIME_STAMPING)},
            "extended key usages 1.3.6.1.5.5.7.3.1, 1.3.6.1.5.5.7.3.8",
        ),
        ({"purposes": ()}, "extensions that cannot be read"),
        ({"purposes": None}, "no extended key usage extension"),
    ],
    ids=["non-critical", "serverAuth-and-timeStamping", "empty", "absent"],
)
def test_refuses_a_certificate_without_critical_timestamping_only(
    root: Root,
    keys: dict[KeyType, CertificateIssuerPrivateKeyTypes],
    options: dict[str, Any],
    message: str,
) -> None:
    key = keys[KeyType.P256]
    certificate = root.issue_tsa(key, **options)

    with pytest.raises(ProfileError, match=message):
        check_tsa_certificate(certificate)
    with pytest.raises(ProfileError, match=message):
        _authority(root, key, certificate=certificate)


def test_refuses_a_signer_whose_key_the_certificate_does_not_certify(
    tsa: Tsa, keys: dict[KeyType, CertificateIssuerPrivateKeyTypes]
) -> None:
    with pytest.raises(InputError, match="does not belong to TSA certificate"):
        TimestampAuthority(
            signer=FileSigner(keys[KeyType.P384]),
            certificate=tsa.certificate,
            policy=POLICY,
            clock=FixedClock(NOW),
        )


def test_refuses_an_ed25519_key(root: Root) -> None:
    key = generate_private_key(KeyType.ED25519)

    with pytest.raises(ProfileError, match="cannot sign with the ed25519 key"):
        _authority(root, key)


def test_refuses_an_accuracy_below_one_millisecond(root: Root, tsa: Tsa) -> None:
    with pytest.raises(InputError, match="at least 1 ms, not 0"):
        _authority(root, tsa.key, certificate=tsa.certificate, accuracy_ms=0)
