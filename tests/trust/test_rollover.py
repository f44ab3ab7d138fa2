"""Root key rollover with self-issued certificates: relying parties keep working across it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from tests.homes import MUSTER, NOW
from trustbridge import oids
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.ca import CaLimits, CertificateAuthority, Endpoints, build_root_certificate
from trustbridge.pki.cross import self_issued_rollover
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.paths import CertificatePool, PathBuilder
from trustbridge.trust.validation import RevocationMode, ValidationParams

NAME = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "DE Industrial Root CA")])
LIMITS = CaLimits(levels=(oids.DE_HIGH,), kinds=frozenset(SubjectKind), path_length=None)
PARAMS = ValidationParams(
    at=NOW + timedelta(days=1),
    acceptable_policies=frozenset({oids.DE_HIGH.dotted_string}),
    revocation=RevocationMode.UNSAFE_SOFT_FAIL,
)


def root(generation: int) -> CertificateAuthority:
    signer = FileSigner(generate_private_key(KeyType.P256))
    certificate = build_root_certificate(
        signer=signer, name=NAME, limits=LIMITS, at=NOW, lifetime=timedelta(days=3650)
    )
    return CertificateAuthority(
        certificate=certificate,
        signer=signer,
        limits=LIMITS,
        endpoints=Endpoints.for_ca(f"http://root-g{generation}.example", "root"),
    )


def leaf(issuer: CertificateAuthority) -> x509.Certificate:
    return issuer.issue(
        subject=MUSTER,
        public_key=generate_private_key(KeyType.P256).public_key(),
        level=oids.DE_HIGH,
        at=NOW,
    )


def test_both_generations_of_relying_parties_validate_both_generations_of_identities() -> None:
    old, new = root(1), root(2)
    old_with_new, new_with_old = self_issued_rollover(old, new, at=NOW)
    assert old_with_new.issuer == old_with_new.subject == NAME
    assert old_with_new.public_key() == old.signer.public_key
    assert new_with_old.public_key() == new.signer.public_key
    links = CertificatePool([old_with_new, new_with_old])
    before, after = leaf(old), leaf(new)
    # A relying party that still holds the old anchor reaches the new key through new-with-old.
    path = PathBuilder(anchors=[old.certificate], pool=links).build(after, PARAMS)
    assert path.certificates[1] == new_with_old
    # One that already holds the new anchor still validates what the old key issued.
    path = PathBuilder(anchors=[new.certificate], pool=links).build(before, PARAMS)
    assert path.certificates[1] == old_with_new
    # Each generation directly, as before.
    PathBuilder(anchors=[old.certificate], pool=links).build(before, PARAMS)
    # Without the links the other generation does not validate (the old key did not sign it).
    with pytest.raises(ValidationError, match="signature of the end-entity certificate"):
        PathBuilder(anchors=[old.certificate]).build(after, PARAMS)


def test_a_rollover_keeps_the_name() -> None:
    other = root(3)
    renamed = CertificateAuthority(
        certificate=build_root_certificate(
            signer=other.signer,
            name=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Another Root")]),
            limits=LIMITS,
            at=NOW,
            lifetime=timedelta(days=365),
        ),
        signer=other.signer,
        limits=LIMITS,
        endpoints=other.endpoints,
    )
    with pytest.raises(InputError, match="keeps the CA's name"):
        self_issued_rollover(root(1), renamed, at=NOW)
