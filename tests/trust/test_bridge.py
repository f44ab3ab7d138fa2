"""The bridge construction between real homes: cross-certificates, discovery, policy mapping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.homes import NOW
from tests.trust.linked import HomesFetcher, Linked, build_linked
from trustbridge import oids
from trustbridge.errors import DuplicateError, InputError, LimitError, ValidationError
from trustbridge.pki.cross import CrossCertificateSpec, PolicyMapping, policy_mappings_of
from trustbridge.trust.paths import PathBuilder
from trustbridge.trust.validation import ValidationParams


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    world = build_linked(tmp_path_factory.mktemp("linked"))
    yield world
    world.close()


def de_params() -> ValidationParams:
    """A German relying party: any German level, explicitly."""
    return ValidationParams(
        at=NOW,
        acceptable_policies=frozenset(
            o.dotted_string for o in (oids.DE_BASIC, oids.DE_SUBSTANTIAL, oids.DE_HIGH)
        ),
        require_explicit_policy=True,
    )


def test_cross_certificates_carry_the_mappings_and_are_published(linked: Linked) -> None:
    (issued,) = linked.bridge.bridge.cross_certificates("root", direction="issued-by")[:1]
    mappings = policy_mappings_of(issued.certificate)
    assert mappings and all(isinstance(m, PolicyMapping) for m in mappings)
    ext = issued.certificate.extensions.get_extension_for_oid(x509.oid.ExtensionOID.POLICY_MAPPINGS)
    assert ext.critical
    # Roots name where they publish what they issued (SIA caRepository, forward discovery).
    sia = linked.root(linked.bridge).extensions.get_extension_for_class(
        x509.SubjectInformationAccess
    )
    assert [d.access_location.value for d in sia.value] == [
        f"{linked.bridge.config.base_url.rstrip('/')}/pki/root/issued.p7c"
    ]
    # The bridge's AIA bundle holds what the German root issued to it.
    bundle = linked.bridge.bridge.issuers_bundle("root")
    assert any(c.issuer == linked.root(linked.de).subject for c in bundle)
    assert any(
        c.issuer == linked.root(linked.bridge).subject
        for c in linked.bridge.bridge.issued_bundle("root")
    )


def test_a_japanese_identity_resolves_from_germany_through_the_bridge(linked: Linked) -> None:
    fetcher = HomesFetcher(linked.homes)
    builder = PathBuilder(anchors=[linked.root(linked.de)], fetcher=fetcher)
    path = builder.build(linked.jp_person, de_params())
    names = [c.subject.rfc4514_string() for c in path.certificates]
    assert "Rheintal Root CA" in names[0] and "ITG Bridge CA" in names[1]
    assert "Sakura Root CA" in names[2] and "Sakura Identity CA" in names[3]
    (policy,) = path.policies
    assert policy.issuer_domain == oids.JP_LEVEL3.dotted_string
    assert policy.user_domain == oids.DE_HIGH.dotted_string
    assert fetcher.count > 0


def test_without_the_mapping_the_bridge_route_fails(tmp_path: Path) -> None:
    world = build_linked(tmp_path, jp_levels=("jp-level1", "jp-level2"))
    try:
        builder = PathBuilder(anchors=[world.root(world.de)], fetcher=HomesFetcher(world.homes))
        with pytest.raises(ValidationError, match="polic"):
            builder.build(world.jp_person, de_params())
    finally:
        world.close()


def test_cross_certification_refusals(linked: Linked) -> None:
    jp_root = linked.root(linked.jp)
    with pytest.raises(LimitError, match="does not hold"):
        linked.de.bridge.cross_certify(
            "root",
            jp_root,
            CrossCertificateSpec(mappings=(PolicyMapping(oids.JP_LEVEL1, oids.ITG_LOA1),)),
        )
    with pytest.raises(InputError, match="anyPolicy"):
        PolicyMapping(x509.ObjectIdentifier("2.5.29.32.0"), oids.ITG_LOA1)
    with pytest.raises(InputError, match="not ISSUER_LEVEL=SUBJECT_LEVEL"):
        linked.de.bridge.parse_mappings(["de-high"])
    with pytest.raises(InputError, match="not a CA"):
        linked.de.bridge.cross_certify(
            "root",
            linked.jp_person,
            CrossCertificateSpec(mappings=(PolicyMapping(oids.DE_HIGH, oids.JP_LEVEL3),)),
        )
    already = linked.jp.bridge.cross_certificates("root", direction="issued-to")[0]
    with pytest.raises(DuplicateError):
        linked.jp.bridge.import_cross_certificate(already.certificate)
    with pytest.raises(ValidationError, match="no CA of this home"):
        linked.de.bridge.import_cross_certificate(already.certificate)
