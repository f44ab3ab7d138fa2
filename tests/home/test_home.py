"""The home: release process, rules, lifecycle, and that failures leave nothing half-written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select

from tests.home.conftest import Reference
from tests.homes import (
    MUSTER,
    NOW,
    PASSPHRASE_ENV,
    Holder,
    decide,
    issued,
    new_holder,
    officer_subject,
)
from trustbridge import oids
from trustbridge.clock import FixedClock
from trustbridge.errors import (
    ApprovalError,
    ConfigError,
    CsrError,
    DuplicateError,
    LimitError,
    PassphraseError,
    ProfileError,
    ReleaseError,
    ValidationError,
)
from trustbridge.home import EnrolmentProof, Home, ProductionBatch
from trustbridge.home.records import Issued, RequestInfo
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    SoftwareSubject,
    Subject,
    roles_of,
    subject_kind_of,
)
from trustbridge.store import tables as t


def count(home: Home, table: object) -> int:
    with home.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def issue_org(
    ref: Reference, subject: OrganizationSubject = MUSTER
) -> tuple[x509.Certificate, Holder]:
    holder = new_holder()
    pending = ref.home.submit_request(
        ca="ids", subject=subject, level="de-high", csr_data=holder.csr()
    )
    assert isinstance(pending, RequestInfo)
    assert pending.state == "pending"
    holder.certificate = issued(decide(ref.home, pending.id, ref.officer))
    return holder.certificate, holder


def machine(serial: str = "A-1", manufacturer: str = MUSTER.name) -> MachineSubject:
    return MachineSubject(
        manufacturer=manufacturer, model="AM-7", serial_number=serial, country="DE"
    )


def enrolment_for(
    ref: Reference, org: Holder, subject: Subject, csr: bytes | None, level: str
) -> EnrolmentProof:
    """Sign an enrolment proof for a request, as the holder's side does."""
    digest = ref.home.request_digest_for(ca="devices", subject=subject, level=level, csr_data=csr)
    assert org.certificate is not None
    return EnrolmentProof.sign(org.certificate, org.signer, digest)


def issue_machine(ref: Reference, org: Holder, serial: str = "A-1") -> Issued:
    """A machine identity from a holder's CSR, released by ``org``'s enrolment credential."""
    csr = new_holder().csr()
    subject = machine(serial)
    result = ref.home.submit_request(
        ca="devices",
        subject=subject,
        level="de-substantial",
        csr_data=csr,
        enrolment=enrolment_for(ref, org, subject, csr, "de-substantial"),
    )
    assert isinstance(result, Issued)
    return result


# -- home lifecycle ------------------------------------------------------------------------------


def test_init_creates_config_database_and_key_folder(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "h", node_name="n1")
    try:
        assert (tmp_path / "h" / "config.toml").exists()
        assert (tmp_path / "h" / "trustbridge.db").exists()
        assert (tmp_path / "h" / "keys").stat().st_mode & 0o077 == 0
        assert home.schemes() == []
    finally:
        home.close()


def test_init_twice_is_refused(tmp_path: Path) -> None:
    Home.init(tmp_path / "h").close()
    with pytest.raises(DuplicateError, match="is a trustbridge home already"):
        Home.init(tmp_path / "h")


def test_open_of_a_folder_that_is_no_home(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a trustbridge home"):
        Home.open(tmp_path)


# -- release process -----------------------------------------------------------------------------


def test_organization_identity_needs_an_officer_and_is_recorded(ref: Reference) -> None:
    certificate, _ = issue_org(ref)
    assert subject_kind_of(certificate) == "organization"
    record = ref.home.certificate(format(certificate.serial_number, "x"))
    assert record.holder == MUSTER.name
    assert record.level == "de-high"
    assert record.key_origin == "holder"
    request = ref.home.request(record.request_id or "")
    assert request.state == "issued"
    assert request.decided_by and request.decided_by.startswith("identity:")
    assert "Schmidt" in (request.decided_by_display or "")
    actions = [e.action for e in ref.home.audit_events()]
    assert {"request.submit", "certificate.issue"} <= set(actions)


def test_rejection_closes_the_request_without_a_certificate(ref: Reference) -> None:
    holder = new_holder()
    pending = ref.home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=holder.csr()
    )
    assert isinstance(pending, RequestInfo)
    before = count(ref.home, t.certificates)
    result = decide(ref.home, pending.id, ref.officer, "reject")
    assert isinstance(result, RequestInfo)
    assert result.state == "rejected"
    assert count(ref.home, t.certificates) == before
    with pytest.raises(ReleaseError, match="rejected, not pending"):
        decide(ref.home, pending.id, ref.officer)


def test_requester_cannot_approve_own_request(ref: Reference) -> None:
    holder = new_holder()
    identity = ref.home.verify_identity(ref.officer.certificate)  # type: ignore[arg-type]
    pending = ref.home.submit_request(
        ca="ids",
        subject=MUSTER,
        level="de-high",
        csr_data=holder.csr(),
        requester=identity.principal,
    )
    assert isinstance(pending, RequestInfo)
    with pytest.raises(ApprovalError, match="four-eyes"):
        decide(ref.home, pending.id, ref.officer)
    assert ref.home.request(pending.id).state == "pending"


def test_officer_cannot_release_an_identity_for_their_own_key(ref: Reference) -> None:
    pending = ref.home.submit_request(
        ca="ids",
        subject=PersonSubject(
            given_name="Anna", surname="Schmidt", country="DE", organization="Rheintal"
        ),
        level="de-high",
        public_key=ref.officer.key.public_key(),
    )
    assert isinstance(pending, RequestInfo)
    with pytest.raises(ApprovalError, match="own key"):
        decide(ref.home, pending.id, ref.officer)


def test_identity_without_officer_role_cannot_approve(ref: Reference) -> None:
    # A person identity without the registration-officer role.
    clerk = new_holder()
    pending = ref.home.submit_request(
        ca="ids",
        subject=PersonSubject(
            given_name="Otto", surname="Klein", country="DE", organization="Rheintal"
        ),
        level="de-high",
        csr_data=clerk.csr(),
    )
    assert isinstance(pending, RequestInfo)
    clerk.certificate = issued(decide(ref.home, pending.id, ref.officer))
    assert roles_of(clerk.certificate) == frozenset()
    other = ref.home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(other, RequestInfo)
    with pytest.raises(ApprovalError, match="registration-officer role"):
        decide(ref.home, other.id, clerk)


def test_authorized_signatory_role_is_readable_from_the_certificate(ref: Reference) -> None:
    holder = new_holder()
    pending = ref.home.submit_request(
        ca="ids",
        subject=PersonSubject(
            given_name="Klaus",
            surname="Weber",
            country="DE",
            organization=MUSTER.name,
            organization_identifier=MUSTER.identifier,
            roles=frozenset({Role.AUTHORIZED_SIGNATORY}),
        ),
        level="de-high",
        csr_data=holder.csr(),
    )
    assert isinstance(pending, RequestInfo)
    certificate = issued(decide(ref.home, pending.id, ref.officer))
    assert roles_of(certificate) == {Role.AUTHORIZED_SIGNATORY}
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert {p.policy_identifier for p in policies} == {oids.DE_HIGH, oids.ROLE_AUTHORIZED_SIGNATORY}


def test_revoked_officer_cannot_approve(ref: Reference) -> None:
    from sqlalchemy import update

    pending = ref.home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(pending, RequestInfo)
    serial = format(ref.officer.certificate.serial_number, "x")  # type: ignore[union-attr]
    with ref.home.engine.begin() as conn:
        conn.execute(
            update(t.certificates).where(t.certificates.c.serial == serial).values(status="revoked")
        )
    with pytest.raises(ValidationError, match="revoked"):
        decide(ref.home, pending.id, ref.officer)


def test_duplicate_pending_request_for_the_same_key_is_refused(ref: Reference) -> None:
    holder = new_holder()
    ref.home.submit_request(ca="ids", subject=MUSTER, level="de-high", csr_data=holder.csr())
    before = count(ref.home, t.requests)
    with pytest.raises(DuplicateError, match="pending already"):
        ref.home.submit_request(ca="ids", subject=MUSTER, level="de-high", csr_data=holder.csr())
    assert count(ref.home, t.requests) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"ca": "devices", "subject": MUSTER, "level": "de-basic"},
            LimitError,
            "does not issue organization",
        ),
        (
            {"ca": "devices", "subject": machine(), "level": "de-high"},
            LimitError,
            "not allowed to issue at level",
        ),
        (
            {
                "ca": "ids",
                "subject": PersonSubject(
                    given_name="A",
                    surname="B",
                    country="DE",
                    organization="X",
                    roles=frozenset({Role.OPERATOR}),
                ),
                "level": "de-high",
            },
            LimitError,
            "may not grant the role",
        ),
        ({"ca": "ids", "subject": MUSTER, "level": "de-ultra"}, Exception, "has no level"),
    ],
)
def test_requests_beyond_the_ca_limits_write_nothing(
    ref: Reference, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    before = (
        count(ref.home, t.requests),
        count(ref.home, t.certificates),
        count(ref.home, t.audit_events),
    )
    with pytest.raises(error, match=match):
        ref.home.submit_request(csr_data=new_holder().csr(), **kwargs)  # type: ignore[arg-type]
    assert (
        count(ref.home, t.requests),
        count(ref.home, t.certificates),
        count(ref.home, t.audit_events),
    ) == before


def test_malformed_csr_is_refused(ref: Reference) -> None:
    with pytest.raises(CsrError, match="not a readable PKCS#10"):
        ref.home.submit_request(
            ca="ids", subject=MUSTER, level="de-high", csr_data=b"garbage", csr_source="x.csr"
        )


def test_key_agreement_certificate_needs_p256(ref: Reference) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(ProfileError, match="not allowed for organization key-agreement"):
        ref.home.submit_request(
            ca="ids",
            subject=MUSTER,
            level="de-high",
            public_key=ed25519.Ed25519PrivateKey.generate().public_key(),
            purpose=Purpose.KEY_AGREEMENT,
        )
    pending = ref.home.submit_request(
        ca="ids",
        subject=MUSTER,
        level="de-high",
        csr_data=new_holder().csr(),
        purpose=Purpose.KEY_AGREEMENT,
    )
    assert isinstance(pending, RequestInfo)
    certificate = issued(decide(ref.home, pending.id, ref.officer))
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement
    assert not usage.digital_signature


def test_the_ca_never_generates_keys_for_people(ref: Reference) -> None:
    with pytest.raises(ProfileError, match="may not generate keys for person"):
        ref.home.submit_request(
            ca="ids",
            subject=PersonSubject(given_name="A", surname="B", country="DE", organization="X"),
            level="de-high",
            generate_key=KeyType.P256,
        )


def test_expired_ca_cannot_issue(ref: Reference, reference_template: tuple[Path, bytes]) -> None:
    late = Home.open(ref.home.path, clock=FixedClock(NOW + timedelta(days=9 * 365)))
    try:
        with pytest.raises(LimitError, match="expired"):
            late.submit_request(
                ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
            )
    finally:
        late.close()


def test_wrong_passphrase_is_reported(ref: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    fresh = Home.open(ref.home.path, clock=FixedClock(NOW))
    try:
        with pytest.raises(PassphraseError, match="wrong passphrase"):
            fresh.submit_request(
                ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
            )
    finally:
        fresh.close()


def test_bootstrap_is_closed_once_an_officer_exists(ref: Reference) -> None:
    with pytest.raises(ReleaseError, match="bootstrap is closed"):
        ref.home.bootstrap_officer(
            ca="ids",
            subject=officer_subject("X", "Eve", "Mallory"),
            level="de-high",
            csr_data=new_holder().csr(),
        )


# -- approval rules ------------------------------------------------------------------------------


def test_machine_released_by_the_manufacturers_enrolment_credential(ref: Reference) -> None:
    _, org = issue_org(ref)
    result = issue_machine(ref, org)
    assert result.request.decision_rule == "enrolment-credential"
    assert result.request.requested_by_display.startswith("CN=Muster")
    assert subject_kind_of(result.certificates[0]) == "machine"


def test_enrolment_credential_of_another_organization_is_refused(ref: Reference) -> None:
    _, org = issue_org(ref)
    subject = machine(manufacturer="Hayabusa Sensor Components K.K.")
    csr = new_holder().csr()
    before = count(ref.home, t.requests)
    with pytest.raises(ApprovalError, match="cannot enrol identities of Hayabusa"):
        ref.home.submit_request(
            ca="devices",
            subject=subject,
            level="de-substantial",
            csr_data=csr,
            enrolment=enrolment_for(ref, org, subject, csr, "de-substantial"),
        )
    assert count(ref.home, t.requests) == before


def test_enrolment_proof_over_other_content_is_refused(ref: Reference) -> None:
    _, org = issue_org(ref)
    csr = new_holder().csr()
    proof = enrolment_for(ref, org, machine("A-1"), csr, "de-substantial")
    with pytest.raises(ApprovalError, match="does not verify"):
        ref.home.submit_request(
            ca="devices",
            subject=machine("A-2"),
            level="de-substantial",
            csr_data=csr,
            enrolment=proof,
        )


def test_one_time_enrolment_token(ref: Reference) -> None:
    token = ref.home.create_enrolment_token(organization=MUSTER.name)
    software = SoftwareSubject(
        name="Line Controller",
        version="2.1.0",
        organization=MUSTER.name,
        organization_identifier=MUSTER.identifier,
        country="DE",
    )
    result = ref.home.submit_request(
        ca="devices",
        subject=software,
        level="de-basic",
        csr_data=new_holder().csr(),
        enrolment_token=token,
    )
    assert isinstance(result, Issued)
    assert result.request.decision_rule == "enrolment-token"
    uri = (
        result.certificates[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    assert uri.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:trustbridge:software:VATDE-123456789:line-controller:2.1.0"
    ]
    with pytest.raises(ApprovalError, match="used already"):
        ref.home.submit_request(
            ca="devices",
            subject=software,
            level="de-basic",
            csr_data=new_holder().csr(),
            enrolment_token=token,
        )


def test_production_batch_with_ca_generated_keys(ref: Reference) -> None:
    _, org = issue_org(ref)
    serials = [f"HPS-{i:04d}" for i in range(25)]
    batch = ProductionBatch(
        ca="devices",
        manufacturer=MUSTER.name,
        model="AM-7",
        country="DE",
        serial_numbers=tuple(serials),
        level="de-basic",
        uri_template="urn:muster:am-7:{serial}",
    )
    assert org.certificate is not None
    proof = EnrolmentProof.sign(org.certificate, org.signer, ref.home.batch_digest(batch))
    certs: list[x509.Certificate] = []
    for chunk, keys in ref.home.issue_machine_batch(batch, enrolment=proof, chunk_size=10):
        assert [k.public_key() for k in keys] == [c.public_key() for c in chunk]
        certs += chunk
    assert len(certs) == 25
    assert len({c.serial_number for c in certs}) == 25
    stored = ref.home.certificates(kind="machine")
    assert sum(1 for c in stored if c.key_origin == "ca-generated") == 25
    assert all(c.serial_number >= 2**64 for c in certs)
    batch_request = ref.home.request(stored[-1].request_id or "")
    assert batch_request.state == "issued"
    assert batch_request.batch_size == 25
    assert batch_request.decision_rule == "enrolment-credential"


# -- lifecycle -----------------------------------------------------------------------------------


def test_renew_keeps_the_key_and_rekey_changes_it(ref: Reference) -> None:
    certificate, _ = issue_org(ref)
    serial = format(certificate.serial_number, "x")
    pending = ref.home.renew(serial)
    assert isinstance(pending, RequestInfo)
    renewed = issued(decide(ref.home, pending.id, ref.officer))
    assert renewed.public_key() == certificate.public_key()
    assert renewed.serial_number != certificate.serial_number
    assert renewed.subject == certificate.subject
    assert ref.home.certificate(format(renewed.serial_number, "x")).renewal_of is not None

    new_key = new_holder()
    pending = ref.home.rekey(serial, csr_data=new_key.csr())
    assert isinstance(pending, RequestInfo)
    rekeyed = issued(decide(ref.home, pending.id, ref.officer))
    assert rekeyed.public_key() == new_key.key.public_key()
    assert rekeyed.subject == certificate.subject

    old_key_csr = new_key.csr()
    with pytest.raises(Exception, match="new key"):
        ref.home.rekey(format(rekeyed.serial_number, "x"), csr_data=old_key_csr)


def test_search_certificates(ref: Reference) -> None:
    issue_org(ref)
    assert [c.holder for c in ref.home.certificates(holder="muster")] == [MUSTER.name]
    assert all(c.kind == "person" for c in ref.home.certificates(kind="person"))
    assert ref.home.certificates(expiring_before=NOW) == []
