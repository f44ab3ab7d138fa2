"""Verification of trustworthiness credentials end to end: real PKIs linked by the bridge, trust
lists accrediting the bodies, status lists served by the issuers' homes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk, jws

from tests.credentials.world import (
    World,
    accreditation_lists,
    at,
    build_world,
    isms_certificate,
    plant_audit,
    self_declaration,
    sensor_safety,
)
from tests.homes import NOW
from trustbridge.credentials._jose import sign_jws
from trustbridge.credentials.criteria import EvidenceKind
from trustbridge.credentials.errors import (
    EvidenceNotAllowedError,
    ExpiredCredentialError,
    HolderBindingError,
    MalformedCredentialError,
    NotAccreditedError,
    NotYetValidCredentialError,
    ReplayedPresentationError,
    RevokedCredentialError,
    StatusUnavailableError,
    SuspendedCredentialError,
    TamperedCredentialError,
    UnknownCriterionError,
    UntrustedIssuerError,
    ValueOutOfRangeError,
    WrongTypeError,
)
from trustbridge.credentials.formats import Format, disclosable_paths, present
from trustbridge.credentials.requests import credential_from_request
from trustbridge.errors import InputError
from trustbridge.pki.signers import FileSigner
from trustbridge.trust._jws import b64url_decode
from trustbridge.trust.lists import ServiceStatus


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("credentials"))
    yield built
    built.close()


def _flip_payload(token: str, change: dict[str, object]) -> str:
    header, payload, signature = token.split("~", maxsplit=1)[0].split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(change)
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def _present(world: World, token: str, *, disclose: list[str] | None = None) -> str:
    """Hayabusa presents ``token`` to audience "a" with nonce "n"."""
    return present(
        token,
        holder=world.hayabusa.holder.signer,
        audience="a",
        nonce="n",
        issued_at=NOW,
        disclose=disclose,
    )


# -- what verifies -------------------------------------------------------------------------------


@pytest.mark.parametrize("format", list(Format))
def test_a_foreign_certificate_verifies_by_the_bridge_with_its_accreditation(
    world: World, format: Format
) -> None:
    token = world.issue(world.fuji, sensor_safety(), format=format)
    verdict = world.verifier().verify(token, at=NOW)
    assert verdict.format == format.value
    assert verdict.credential.claims[0].criterion == "iec-61508"
    assert verdict.credential.claims[0].value == "SIL2"
    assert verdict.credential.evidence.kind is EvidenceKind.CERTIFICATE
    assert verdict.issuer_route == "bridge"
    assert verdict.issuer_level == "itg/itg-loa3"
    assert verdict.accredited_by is not None and "iec-61508" in verdict.accredited_by
    assert not verdict.holder_bound


def test_an_audit_by_a_listed_auditor_and_a_self_declaration_verify(world: World) -> None:
    verifier = world.verifier()
    audit = verifier.verify(world.issue(world.nordsee, plant_audit()), at=NOW)
    assert audit.credential.evidence.verdict == "pass-with-findings"
    assert audit.issuer_route == "own-scheme"
    declared = verifier.verify(world.issue(world.hayabusa, self_declaration()), at=NOW)
    assert declared.accredited_by is None
    assert {c.criterion for c in declared.credential.claims} == {
        "appi-processing",
        "incident-response",
        "business-continuity",
    }


def test_vc_jwt_verifies_with_jwcrypto_given_the_x5c_leaf_key(world: World) -> None:
    token = world.issue(world.fuji, isms_certificate())
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "vc+jwt"
    leaf = base64.b64decode(header["x5c"][0])
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem = (
        x509.load_der_x509_certificate(leaf)
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    checked = jws.JWS()
    checked.deserialize(token)
    checked.verify(jwk.JWK.from_pem(pem), alg="ES256")
    payload = json.loads(checked.payload)
    assert payload["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert payload["credentialSubject"]["claims"][0]["criterion"] == "iso-iec-27001"


# -- presentations ------------------------------------------------------------------------------


@pytest.mark.parametrize("format", list(Format))
def test_a_presentation_binds_audience_and_nonce(world: World, format: Format) -> None:
    token = world.issue(world.fuji, sensor_safety(), format=format)
    presentation = present(
        token,
        holder=world.hayabusa.holder.signer,
        audience="https://muster.example",
        nonce="n-1",
        issued_at=NOW,
    )
    verifier = world.verifier()
    verdict = verifier.verify(presentation, at=NOW, audience="https://muster.example", nonce="n-1")
    assert verdict.holder_bound
    with pytest.raises(ReplayedPresentationError, match="nonce"):
        verifier.verify(presentation, at=NOW, audience="https://muster.example", nonce="n-2")
    with pytest.raises(ReplayedPresentationError, match="audience"):
        verifier.verify(presentation, at=NOW, audience="https://other.example", nonce="n-1")
    with pytest.raises(ReplayedPresentationError, match="old"):
        verifier.verify(
            presentation,
            at=NOW + timedelta(hours=1),
            audience="https://muster.example",
            nonce="n-1",
        )


def _resigned(jwt: str, signer: FileSigner) -> str:
    """The same header and payload, signed by someone else."""
    header, payload, _ = jwt.split(".")
    return sign_jws(json.loads(b64url_decode(header)), b64url_decode(payload), signer)


def test_a_presentation_by_someone_else_is_not_bound(world: World) -> None:
    thief = world.muster.holder.signer
    with pytest.raises(InputError, match="another key"):
        present(
            world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT),
            holder=thief,
            audience="a",
            nonce="n",
            issued_at=NOW,
        )
    for format in Format:
        token = world.issue(world.fuji, sensor_safety(), format=format)
        genuine = _present(world, token)
        if format is Format.SD_JWT:
            prefix, kb = genuine.rsplit("~", 1)
            stolen = f"{prefix}~{_resigned(kb, thief)}"
        else:
            stolen = _resigned(genuine, thief)
        with pytest.raises(HolderBindingError):
            world.verifier().verify(stolen, at=NOW, audience="a", nonce="n")


def test_a_bare_credential_is_not_a_presentation(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety())
    with pytest.raises(HolderBindingError, match="vp\\+jwt"):
        world.verifier().verify(token, at=NOW, audience="a", nonce="n")


def test_selective_disclosure_reveals_only_what_is_chosen(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT)
    assert "credentialSubject.globalAssetId" in disclosable_paths(token)
    presentation = _present(world, token, disclose=["credentialSubject.claims[0]"])
    verdict = world.verifier().verify(presentation, at=NOW, audience="a", nonce="n")
    assert verdict.disclosed == ("credentialSubject.claims[0]",)
    assert verdict.credential.subject.global_asset_id is None
    assert verdict.credential.claims[0].value == "SIL2"
    assert "FCA-61508-0042" not in json.dumps(verdict.credential.model_dump(mode="json"))
    with pytest.raises(InputError, match="not disclosable"):
        _present(world, token, disclose=["credentialSubject.name"])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_disclosing_fewer_claims_never_invalidates_a_presentation(
    world: World, data: st.DataObject
) -> None:
    token = world.issue(world.hayabusa, self_declaration(), format=Format.SD_JWT)
    paths = disclosable_paths(token)
    chosen = data.draw(st.lists(st.sampled_from(paths), unique=True))
    presentation = _present(world, token, disclose=chosen)
    verdict = world.verifier().verify(presentation, at=NOW, audience="a", nonce="n")
    assert set(verdict.disclosed) == set(chosen)
    shown = sum(1 for p in chosen if p.startswith("credentialSubject.claims["))
    assert len(verdict.credential.claims) == shown


# -- what does not ------------------------------------------------------------------------------


def test_a_tampered_credential_is_refused(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety())
    tampered = _flip_payload(token, {"exp": 4102444800})
    with pytest.raises(TamperedCredentialError):
        world.verifier().verify(tampered, at=NOW)


def test_a_tampered_disclosure_is_refused(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT)
    issuer_jwt, *disclosures = token.split("~")
    forged = (
        base64.urlsafe_b64encode(json.dumps(["salt", "partNumber", "HPS-999"]).encode())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(TamperedCredentialError):
        world.verifier().verify("~".join([issuer_jwt, forged, *disclosures]), at=NOW)


def test_wrong_typ_is_refused(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety())
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises((MalformedCredentialError, WrongTypeError)):
        world.verifier().verify(header + token[token.index(".") :], at=NOW)


def test_expired_and_not_yet_valid_credentials_are_refused(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety())
    with pytest.raises(ExpiredCredentialError, match="expired"):
        world.verifier().verify(token, at=at(days=400))
    with pytest.raises(NotYetValidCredentialError):
        world.verifier().verify(token, at=at(days=-1))


def test_a_body_not_accredited_for_the_criterion_is_refused(world: World) -> None:
    # Nordsee audits IEC 62443-3-3 and ISO/IEC 27001, not IEC 61508; as an auditor only.
    request = sensor_safety()
    request["evidence"] = {"kind": "certificate", "reference": "NC-1"}
    token = world.issue(world.nordsee, request)
    with pytest.raises(NotAccreditedError, match="iec-61508"):
        world.verifier().verify(token, at=NOW)
    narrow = accreditation_lists(world, fuji_scope=("iso-iec-27001",))
    fuji_token = world.issue(world.fuji, sensor_safety())
    with pytest.raises(NotAccreditedError, match="iec-61508"):
        world.verifier(trust_lists=narrow).verify(fuji_token, at=NOW)


def test_a_suspended_accreditation_is_refused(world: World) -> None:
    token = world.issue(world.fuji, sensor_safety())
    lists = accreditation_lists(world, fuji=ServiceStatus.SUSPENDED)
    with pytest.raises(NotAccreditedError):
        world.verifier(trust_lists=lists).verify(token, at=NOW)


def test_someone_elses_self_declaration_is_refused(world: World) -> None:
    request = self_declaration()
    request["subject"]["organization"] = "VATDE-123456789"
    request["subject"]["name"] = "Muster Maschinenbau GmbH"
    home = world.hayabusa.home
    assert home is not None
    with pytest.raises(InputError, match="itself"):
        world.issue(world.hayabusa, request)


def test_unknown_criteria_values_and_evidence_are_refused_at_issuance(world: World) -> None:
    home = world.fuji.home
    assert home is not None
    issuer = home.credentials.issuer()
    request = sensor_safety()
    request["claims"][0]["criterion"] = "iec-61509"
    with pytest.raises(UnknownCriterionError, match="iec-61509") as unknown:
        credential_from_request(request, issuer=issuer, at=NOW)
    assert "iec-61508" in (unknown.value.hint or "")
    with pytest.raises(ValueOutOfRangeError):
        credential_from_request(sensor_safety("SIL7"), issuer=issuer, at=NOW)
    declared = sensor_safety()
    declared["evidence"] = {"kind": "self-declaration"}
    with pytest.raises(EvidenceNotAllowedError):
        credential_from_request(declared, issuer=issuer, at=NOW)


def test_an_untrusted_issuer_is_refused(world: World) -> None:
    from dataclasses import replace

    from trustbridge.credentials.status import StatusListCache
    from trustbridge.credentials.verify import CredentialVerifier, status_list_reader
    from trustbridge.trust.resolver import TrustResolver

    token = world.issue(world.fuji, sensor_safety())
    # A relying party that trusts only the Japanese root's *other* side: no anchor, no lists.
    config = replace(world.config(), anchors=(), lotl=None, trust_lists=())
    resolver = TrustResolver(config, fetcher=world.fetcher)
    isolated = CredentialVerifier(
        resolver,
        trust_lists=world.trust_lists,
        status=StatusListCache(world.fetcher.fetch, status_list_reader(resolver)),
    )
    with pytest.raises(UntrustedIssuerError, match="not trusted at issuance"):
        isolated.verify(token, at=NOW)


# -- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", list(Format))
def test_revoked_and_suspended_credentials_are_refused(world: World, format: Format) -> None:
    home = world.fuji.home
    assert home is not None
    token = world.issue(world.fuji, isms_certificate(), format=format)
    credential_id = home.credentials.issued_list()[-1].id
    world.verifier().verify(token, at=NOW)
    home.credentials.change_status(credential_id, "suspend", reason="surveillance audit due")
    with pytest.raises(SuspendedCredentialError):
        world.verifier().verify(token, at=NOW)
    home.credentials.change_status(credential_id, "resume")
    world.verifier().verify(token, at=NOW)
    home.credentials.change_status(credential_id, "revoke", reason="certificate withdrawn")
    with pytest.raises(RevokedCredentialError):
        world.verifier().verify(token, at=NOW)


def test_an_unreachable_status_list_fails_closed(world: World) -> None:
    home = world.fuji.home
    assert home is not None
    token = world.issue(world.fuji, isms_certificate())
    world.fetcher.down.add(home.config.base_url)
    try:
        with pytest.raises(StatusUnavailableError, match="refused"):
            world.verifier().verify(token, at=NOW)
    finally:
        world.fetcher.down.clear()


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(format=st.sampled_from(list(Format)), disclose_all=st.booleans(), present_it=st.booleans())
def test_a_revoked_credential_never_verifies(
    world: World, format: Format, disclose_all: bool, present_it: bool
) -> None:
    home = world.fuji.home
    assert home is not None
    token = world.issue(world.fuji, isms_certificate(), format=format)
    home.credentials.change_status(home.credentials.issued_list()[-1].id, "revoke")
    verifier = world.verifier()
    if present_it:
        chosen: list[str] | None = None if disclose_all or format is Format.VC_JWT else []
        presentation = _present(world, token, disclose=chosen)
        with pytest.raises(RevokedCredentialError):
            verifier.verify(presentation, at=NOW, audience="a", nonce="n")
    else:
        with pytest.raises(RevokedCredentialError):
            verifier.verify(token, at=NOW)


# -- what a holder or a forger might try (from the security review) ----------------------------


def test_a_presentation_disclosing_no_claim_still_needs_an_accredited_issuer(
    world: World,
) -> None:
    genuine = world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT)
    verdict = world.verifier().verify(
        _present(world, genuine, disclose=[]), at=NOW, audience="a", nonce="n"
    )
    assert verdict.credential.claims == ()
    assert verdict.accredited_by is not None and "no claim disclosed" in verdict.accredited_by
    # Hayabusa is no conformity assessment body: its "certificate" proves nothing, even empty.
    forged = world.issue(world.hayabusa, sensor_safety(), format=Format.SD_JWT)
    with pytest.raises(NotAccreditedError, match="not a granted cab"):
        world.verifier().verify(
            _present(world, forged, disclose=[]), at=NOW, audience="a", nonce="n"
        )


def test_a_vc_jwt_without_claims_is_refused(world: World) -> None:
    from trustbridge.credentials.model import TrustCredential

    home = world.fuji.home
    assert home is not None
    token = world.issue(world.fuji, sensor_safety())
    header, payload, _ = token.split(".")
    data = json.loads(b64url_decode(payload))
    data["credentialSubject"]["claims"] = []
    resigned = sign_jws(
        json.loads(b64url_decode(header)),
        json.dumps(data).encode(),
        world.fuji.holder.signer,
    )
    with pytest.raises(MalformedCredentialError, match="no claim"):
        world.verifier().verify(resigned, at=NOW)
    del data["credentialSubject"]["claims"]
    with pytest.raises(MalformedCredentialError, match="claims"):
        TrustCredential.from_vc({k: v for k, v in data.items() if k != "cnf"})


def test_a_withheld_status_list_is_refused(world: World) -> None:
    from trustbridge.credentials import sdjwt

    token = world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT)
    verified = world.verifier().verify(token, at=NOW)
    assert verified.credential.status
    # An issuer's software that makes credentialStatus disclosable lets the holder hide it.
    payload = json.loads(b64url_decode(world.issue(world.fuji, sensor_safety()).split(".")[1]))
    payload.pop("@context")
    payload["vct"] = "https://w3id.org/trustbridge/vct/trustworthiness/v1"
    header = {"typ": "dc+sd-jwt", "x5c": json.loads(b64url_decode(token.split(".")[0]))["x5c"]}
    layout = sdjwt.issue_sd_jwt(
        payload,
        disclosable=[("credentialStatus",), ("credentialSubject", "claims", 0)],
        signer=world.fuji.holder.signer,
        header=header,
    )
    hidden = _present(world, layout, disclose=["credentialSubject.claims[0]"])
    with pytest.raises(MalformedCredentialError, match="selectively disclosable"):
        world.verifier().verify(hidden, at=NOW, audience="a", nonce="n")


def test_a_cached_header_cannot_be_changed(world: World) -> None:
    from trustbridge.credentials._jose import decode_jwt

    token = world.issue(world.fuji, sensor_safety())
    _, header, _ = decode_jwt(token, source="t")
    with pytest.raises(TypeError):
        header["x5c"][0] = "POISON"
    assert decode_jwt(token, source="t")[1]["x5c"][0] != "POISON"


# -- a warm verifier (the caches of issue 5's benchmark) ---------------------------------------


def test_a_warm_verifier_sees_a_revocation_once_its_cached_list_expires(world: World) -> None:
    home = world.fuji.home
    assert home is not None
    token = world.issue(world.fuji, isms_certificate())
    credential_id = home.credentials.issued_list()[-1].id
    verifier = world.verifier()
    for _ in range(3):
        verifier.verify(token, at=NOW)
    home.credentials.change_status(credential_id, "revoke", reason="certificate withdrawn")
    # The list fetched at NOW may be used for its ttl (5 minutes), as the status design allows
    verifier.verify(token, at=NOW + timedelta(minutes=4))
    with pytest.raises(RevokedCredentialError):
        verifier.verify(token, at=NOW + timedelta(minutes=6))
    fresh = world.issue(world.fuji, isms_certificate())
    verifier.verify(fresh, at=NOW + timedelta(minutes=6))
    home.credentials.change_status(home.credentials.issued_list()[-1].id, "suspend")
    verifier.status.invalidate()
    with pytest.raises(SuspendedCredentialError):
        verifier.verify(fresh, at=NOW + timedelta(minutes=6))


def test_a_warm_verifier_keeps_issuers_apart(world: World) -> None:
    verifier = world.verifier()
    fuji = verifier.verify(world.issue(world.fuji, sensor_safety()), at=NOW)
    nordsee = verifier.verify(world.issue(world.nordsee, plant_audit()), at=NOW)
    assert "Fuji" in fuji.issuer_identity and "Nordsee" in nordsee.issuer_identity
    assert fuji.issuer_route == "bridge" and nordsee.issuer_route == "own-scheme"
    # Fuji's credential re-signed by Nordsee (a valid chain, another organization): refused,
    # however often Fuji's chain was seen before.
    header, payload, _ = world.issue(world.fuji, sensor_safety()).split(".")
    audit = world.issue(world.nordsee, plant_audit())
    nordsee_header = json.loads(b64url_decode(audit.split(".")[0]))
    resigned = sign_jws(nordsee_header, b64url_decode(payload), world.nordsee.holder.signer)
    with pytest.raises(UntrustedIssuerError, match=r"names issuer .* but is signed by"):
        verifier.verify(resigned, at=NOW)
    # Fuji's header on a payload Nordsee signed: the signature of Fuji's leaf does not verify.
    _, nordsee_payload, nordsee_signature = resigned.split(".")
    with pytest.raises(TamperedCredentialError):
        verifier.verify(f"{header}.{nordsee_payload}.{nordsee_signature}", at=NOW)
    verifier.verify(world.issue(world.fuji, sensor_safety()), at=NOW)


def test_every_call_checks_the_document_again(world: World) -> None:
    # Nothing is cached by token: a token refused once is refused again, and the same verifier
    # still accepts the genuine one in between.
    verifier = world.verifier()
    token = world.issue(world.fuji, sensor_safety())
    changed = _flip_payload(token, {"exp": 1})
    for _ in range(2):
        verifier.verify(token, at=NOW)
        with pytest.raises(TamperedCredentialError):
            verifier.verify(changed, at=NOW)
        with pytest.raises(ExpiredCredentialError):
            verifier.verify(token, at=NOW + timedelta(days=3650))
