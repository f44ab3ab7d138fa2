"""CA keys in a PKCS#11 token (SoftHSM2) through the same home operations as file keys."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from rfc3161_client import TimestampRequestBuilder, VerifierBuilder, decode_timestamp_response
from sqlalchemy import func, select

from tests.home.test_status import _request as _ocsp_request
from tests.home.test_status import _verify_response
from tests.homes import MUSTER, NOW, decide, issued, new_holder, officer_subject
from tests.softhsm import SoftHsmToken
from trustbridge import oids
from trustbridge.clock import FixedClock
from trustbridge.errors import PassphraseError, TokenUnavailableError
from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import RequestInfo
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import Role, SubjectKind
from trustbridge.store import tables as t
from trustbridge.trust.schemes import TrustScheme

pytestmark = pytest.mark.softhsm
PIN_ENV = "TB_TEST_TOKEN_PIN"


def hsm_spec(token: SoftHsmToken, key_type: KeyType = KeyType.P256) -> KeySpec:
    label = f"ca-{uuid.uuid4().hex[:8]}"
    uri = f"pkcs11:token={token.label};object={label}?module-path={token.module}"
    return KeySpec(key_type, pkcs11_uri=uri, secret=SecretSource(env=PIN_ENV))


@pytest.fixture
def hsm_home(tmp_path: Path, softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv(PIN_ENV, softhsm_token.pin)
    home = Home.init(tmp_path / "home", clock=FixedClock(NOW))
    home.create_scheme(TrustScheme.create("de", "Germany", [("de-high", oids.DE_HIGH)]))
    return home


def test_hsm_root_and_issuing_ca_issue_identities(
    hsm_home: Home, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    root = hsm_home.create_root_ca(
        scheme="de", name="HSM Root", slug="root", key=hsm_spec(softhsm_token, KeyType.P384)
    )
    assert root.key_store == "pkcs11"
    assert root.key_ref.startswith("pkcs11:token=")
    assert not list((hsm_home.path / "keys").iterdir()), "no key file for a token key"
    hsm_home.create_issuing_ca(
        parent="root",
        name="HSM Identity CA",
        slug="ids",
        kinds=[SubjectKind.ORGANIZATION, SubjectKind.PERSON],
        roles=[Role.REGISTRATION_OFFICER],
        key=hsm_spec(softhsm_token),
    )
    officer = new_holder()
    officer.certificate = issued(
        hsm_home.bootstrap_officer(
            ca="ids",
            subject=officer_subject("R"),
            level="de-high",
            csr_data=officer.csr(),
        )
    )
    hsm_home.close()
    # A fresh process view: keys are found again by their URI and the PIN from the environment.
    home = Home.open(hsm_home.path, clock=FixedClock(NOW))
    pending = home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(pending, RequestInfo)
    certificate = issued(decide(home, pending.id, officer))
    chain = home.chain_of("ids")
    (tmp_path / "leaf.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(chain[-1].public_bytes(Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem", "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "leaf.pem: OK" in result.stdout
    home.close()


def test_wrong_pin_fails_and_writes_no_ca(
    hsm_home: Home, softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, "not-the-pin")
    with pytest.raises(PassphraseError, match="PIN"):
        hsm_home.create_root_ca(scheme="de", name="Root", slug="root", key=hsm_spec(softhsm_token))
    with hsm_home.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.authorities)).scalar_one() == 0


def test_unreachable_token_fails_clearly(hsm_home: Home) -> None:
    spec = KeySpec(
        KeyType.P256,
        pkcs11_uri="pkcs11:token=no-such-token;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so",
        secret=SecretSource(env=PIN_ENV),
    )
    with pytest.raises(TokenUnavailableError, match="no-such-token"):
        hsm_home.create_root_ca(scheme="de", name="Root", slug="root", key=spec)
    assert hsm_home.cas() == []


def test_ocsp_and_tsa_keys_of_a_token_ca_stay_in_the_token(
    hsm_home: Home, softhsm_token: SoftHsmToken
) -> None:
    """A CA whose key is in the HSM gets its responder and TSA keys there too, never as files."""
    hsm_home.create_root_ca(scheme="de", name="HSM Root", slug="root", key=hsm_spec(softhsm_token))
    hsm_home.create_issuing_ca(
        parent="root",
        name="HSM Identity CA",
        slug="ids",
        kinds=[SubjectKind.PERSON],
        roles=[Role.REGISTRATION_OFFICER],
        key=hsm_spec(softhsm_token),
    )
    officer = issued(
        hsm_home.bootstrap_officer(
            ca="ids", subject=officer_subject("R"), level="de-high", csr_data=new_holder().csr()
        )
    )
    issuer = hsm_home.authority("ids").certificate
    answer = hsm_home.status.answer(
        _ocsp_request(officer, issuer, algorithm=hashes.SHA256()), ca="ids"
    )
    response = _verify_response(answer.der, issuer)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    request = TimestampRequestBuilder().data(b"contract").build()
    token = decode_timestamp_response(hsm_home.status.tsa("ids").respond(request.as_bytes()))
    verifier = VerifierBuilder.from_request(request).add_root_certificate(
        hsm_home.chain_of("ids")[-1]
    )
    assert verifier.build().verify_message(token, b"contract")
    with hsm_home.engine.connect() as conn:
        stores = {
            (r.service, r.key_store, r.key_ref.startswith("pkcs11:token="))
            for r in conn.execute(select(t.service_keys))
        }
    assert stores == {("ocsp", "pkcs11", True), ("tsa", "pkcs11", True)}
    assert not list((hsm_home.path / "keys").iterdir()), "no key file beside token keys"
