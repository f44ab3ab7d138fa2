"""``trustbridge verify``, ``bridge``, ``trustlist`` and ``lotl``: linking trust schemes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.markup import escape
from rich.table import Table

from trustbridge.cli._common import (
    _holder_signer,
    _home,
    _load_cert,
    _load_certs,
    _parse_time,
    _read,
    console,
    state,
)
from trustbridge.errors import InputError
from trustbridge.home import Home
from trustbridge.pki.ca import NameConstraintsSpec
from trustbridge.pki.cross import CrossCertificateSpec
from trustbridge.trust.lists import (
    Lotl,
    TrustList,
    lotl_from_json,
    payload_of,
    sign_lotl,
    sign_trust_list,
    trust_list_from_json,
)
from trustbridge.trust.paths import (
    CertificatePool,
    HttpFetcher,
    PathBuilder,
    SearchLimits,
    read_certificates,
)
from trustbridge.trust.resolver import Resolution, TrustResolver
from trustbridge.trust.validation import RevocationMode, ValidatedPath, ValidationParams

__all__ = ["bridge_app", "lotl_app", "trustlist_app", "verify"]

bridge_app = typer.Typer(
    help="Bridge construction: cross-certify other schemes' CAs with policy mappings.",
    no_args_is_help=True,
)
trustlist_app = typer.Typer(
    help="Group construction: signed trust lists of recognized providers.", no_args_is_help=True
)
lotl_app = typer.Typer(
    help="Group construction: the signed list of trusted lists (LOTL).", no_args_is_help=True
)


# -- reading what the user points at -----------------------------------------------------------


def _collect(paths: list[Path]) -> tuple[list[x509.Certificate], list[bytes]]:
    """Certificates (PEM, DER, .p7c, whatever the name) and CRLs from files and folders."""
    certificates: list[x509.Certificate] = []
    crls: list[bytes] = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path} is neither a file nor a folder")
    for file in files:
        data = _read(file, "file")
        found = read_certificates(data)
        if found:
            certificates += found
            continue
        crl = _crl_der(data)
        if crl is not None:
            crls.append(crl)
    return certificates, crls


def _crl_der(data: bytes) -> bytes | None:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)
        return x509.load_der_x509_crl(data).public_bytes(Encoding.DER)
    except ValueError:
        return None


# -- verify ---------------------------------------------------------------------------------------


def _level_names(home: Home | None) -> dict[str, str]:
    if home is None:
        return {}
    return {lv.oid.dotted_string: f"{s.code}/{lv.name}" for s in home.schemes() for lv in s.levels}


def _path_rows(certificates: tuple[x509.Certificate, ...]) -> list[str]:
    return [c.subject.rfc4514_string() for c in certificates]


def _print_resolution(result: Resolution, as_json: bool) -> None:
    data: dict[str, Any] = {
        "valid": True,
        "route": result.route.value,
        "path": _path_rows(result.path),
        "holder_level": str(result.holder_level),
        "own_level": str(result.own_level) if result.own_level else None,
        "reference_level": str(result.reference_level) if result.reference_level else None,
        "revocation": result.revocation,
        "reasons": list(result.reasons),
        "routes": [
            {
                "route": o.route.value,
                "reference_level": str(o.reference_level) if o.reference_level else None,
                "error": o.error,
            }
            for o in result.routes
        ],
        "disagreement": result.disagreement,
        "valid_until": result.valid_until.isoformat(),
    }
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False))
        return
    console.print(f"[bold green]trusted[/] by the {result.route} route", markup=True)
    for index, name in enumerate(_path_rows(result.path)):
        console.print(f"  {index}. {name}", highlight=False)
    console.print(f"  holder level    {data['holder_level']}")
    console.print(f"  own equivalent  {data['own_level'] or '-'}")
    console.print(f"  reference level {data['reference_level'] or '-'}")
    console.print(f"  revocation      {result.revocation}")
    for reason in result.reasons:
        console.print(f"  - {reason}", highlight=False)
    for outcome in result.routes:
        if outcome.error:
            console.print(f"  ({outcome.route} route: {outcome.error})", highlight=False)
    if result.disagreement:
        console.print(
            f"  [bold yellow]warning:[/] {escape(str(result.disagreement))}",
            highlight=False,
            markup=True,
        )


def _print_path(path: ValidatedPath, names: dict[str, str], crls: int, as_json: bool) -> None:
    policies = sorted(
        {
            (names.get(p.issuer_domain, p.issuer_domain), names.get(p.user_domain, p.user_domain))
            for p in path.policies
        }
    )
    data: dict[str, Any] = {
        "valid": True,
        "route": "anchor",
        "path": _path_rows(path.certificates),
        "policies": [{"certificate": a, "anchor_domain": b} for a, b in policies],
        "revocation": f"checked against {crls} CRL(s)",
    }
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False))
        return
    console.print("[bold green]valid[/] path to a given anchor", markup=True)
    for index, name in enumerate(_path_rows(path.certificates)):
        console.print(f"  {index}. {name}", highlight=False)
    for certificate_level, anchor_level in policies:
        console.print(f"  policy {certificate_level} (in the anchor's domain: {anchor_level})")
    console.print(f"  revocation      {data['revocation']}")


def verify(
    certificate: Annotated[Path, typer.Argument(help="The certificate to verify (PEM or DER).")],
    untrusted: Annotated[
        list[Path],
        typer.Option(help="Further certificates, .p7c bundles and CRLs: a file or a folder."),
    ] = [],  # noqa: B006
    anchor: Annotated[
        list[Path], typer.Option(help="Trust anchor(s); default: the home's trust.")
    ] = [],  # noqa: B006
    crl: Annotated[list[Path], typer.Option(help="CRL files (PEM or DER).")] = [],  # noqa: B006
    at: Annotated[str | None, typer.Option(help="Validation time (ISO 8601); default now.")] = None,
    policy: Annotated[
        list[str], typer.Option(help="Acceptable policy OID (with --anchor); repeat.")
    ] = [],  # noqa: B006
    revocation: Annotated[
        str, typer.Option(help="require (default), if-available or none.")
    ] = "require",
    level: Annotated[
        str | None, typer.Option(help="Minimum reference level, e.g. itg-loa3.")
    ] = None,
    offline: Annotated[
        bool, typer.Option(help="Do not fetch AIA/SIA bundles or CRLs over HTTP.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Is this certificate trusted, by which route and at which level? Exit 0 only if valid."""
    leaf_certificates = read_certificates(_read(certificate, "certificate"))
    if not leaf_certificates:
        raise InputError(f"{certificate} holds no certificate")
    leaf = leaf_certificates[0]
    pool, crls = _collect(untrusted)
    pool += leaf_certificates[1:]
    crls += [c for path in crl if (c := _crl_der(_read(path, "CRL"))) is not None]
    modes = {
        "require": RevocationMode.REQUIRE,
        "if-available": RevocationMode.HARD_FAIL,
        "none": RevocationMode.UNSAFE_SOFT_FAIL,
    }
    if revocation not in modes:
        raise InputError(f"--revocation {revocation!r}: choose require, if-available or none")
    if revocation == "none":
        crls = []  # not checked, so not even a stale CRL can fail the path
    home = Home.open(state.home_path) if (state.home_path / "config.toml").exists() else None
    # With a home, its [fetch] allow-list applies; without one (--anchor only), no list.
    fetcher = None if offline else (home.fetcher() if home else HttpFetcher())
    try:
        when = (
            _parse_time(at, "--at") if at else (home.now() if home else datetime.now().astimezone())
        )
        if anchor:
            anchors = [c for path in anchor for c in _load_certs_any(path)]
            params = ValidationParams(
                at=when,
                acceptable_policies=frozenset(policy),
                require_explicit_policy=bool(policy),
                revocation=modes[revocation],
                crls=tuple(crls),
            )
            builder = PathBuilder(anchors=anchors, pool=CertificatePool(pool), fetcher=fetcher)
            found = builder.find(leaf, params)
            _print_path(found.path, _level_names(home), len(found.crls), as_json)
            return
        if home is None:
            raise InputError(
                f"no home at {state.home_path} and no --anchor given",
                hint="pass --anchor ROOT.pem, or --home a trustbridge home",
            )
        snapshot = home.trust.snapshot(when)
        for problem in snapshot.problems:
            console.print(f"[yellow]note:[/] {escape(str(problem))}", highlight=False, markup=True)
        resolver = TrustResolver(
            snapshot.config,
            fetcher=fetcher,
            pool=pool,
            revocation=modes[revocation],
            limits=SearchLimits(),
            cache=False,
        )
        result = resolver.resolve(leaf, at=when, crls=crls, min_level=level)
        _print_resolution(result, as_json)
    finally:
        if home is not None:
            home.close()


def _load_certs_any(path: Path) -> list[x509.Certificate]:
    found = read_certificates(_read(path, "anchor"))
    if not found:
        raise InputError(f"{path} holds no certificate")
    return found


# -- bridge -------------------------------------------------------------------------------------


@bridge_app.command("cross-certify")
def bridge_cross_certify(
    subject: Annotated[Path, typer.Argument(help="The other domain's CA certificate.")],
    ca: Annotated[str, typer.Option(help="This home's CA that certifies (short name).")],
    map_: Annotated[
        list[str],
        typer.Option("--map", help="ISSUER_LEVEL=SUBJECT_LEVEL (names or OIDs); repeat."),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the cross-certificate (PEM).")],
    days: Annotated[int, typer.Option(help="Validity in days.")] = 5 * 365,
    require_explicit_policy: Annotated[
        int | None, typer.Option(help="policyConstraints requireExplicitPolicy (skip certs).")
    ] = None,
    inhibit_policy_mapping: Annotated[
        int | None, typer.Option(help="policyConstraints inhibitPolicyMapping (skip certs).")
    ] = None,
    inhibit_any_policy: Annotated[
        int | None, typer.Option(help="inhibitAnyPolicy (skip certs).")
    ] = None,
    path_length: Annotated[int | None, typer.Option(help="pathLenConstraint.")] = None,
    permit_dns: Annotated[list[str], typer.Option(help="nameConstraints: permitted DNS.")] = [],  # noqa: B006
    permit_dn: Annotated[
        list[str], typer.Option(help="nameConstraints: permitted directory name (RFC 4514).")
    ] = [],  # noqa: B006
) -> None:
    """Cross-certify another scheme's CA: its levels mapped onto this CA's (policyMappings)."""
    with _home() as home:
        spec = CrossCertificateSpec(
            mappings=home.bridge.parse_mappings(map_),
            name_constraints=(
                NameConstraintsSpec(permitted_dns=tuple(permit_dns), permitted_dn=tuple(permit_dn))
                if permit_dns or permit_dn
                else None
            ),
            require_explicit_policy=require_explicit_policy,
            inhibit_policy_mapping=inhibit_policy_mapping,
            inhibit_any_policy=inhibit_any_policy,
            path_length=path_length,
        )
        info = home.bridge.cross_certify(
            ca, _load_cert(subject), spec, lifetime=timedelta(days=days)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(info.certificate.public_bytes(Encoding.PEM))
    mapped = ", ".join(f"{a} -> {b}" for a, b in info.mappings)
    console.print(f"cross-certified {info.subject} ({mapped}) -> {out}", highlight=False)


@bridge_app.command("import")
def bridge_import(
    certificate: Annotated[Path, typer.Argument(help="A cross-certificate issued to a CA here.")],
) -> None:
    """Record a cross-certificate another domain issued to one of this home's CAs."""
    with _home() as home:
        info = home.bridge.import_cross_certificate(_load_cert(certificate))
    console.print(f"CA {info.ca}: published the certificate from {info.issuer}", highlight=False)


@bridge_app.command("list")
def bridge_list() -> None:
    """Cross-certificates this home issued and received."""
    with _home() as home:
        rows = home.bridge.cross_certificates()
    table = Table("CA", "direction", "subject", "issuer", "mappings", "until")
    for r in rows:
        table.add_row(
            r.ca,
            r.direction,
            r.subject,
            r.issuer,
            ", ".join(f"{a}->{b}" for a, b in r.mappings),
            f"{r.not_after:%Y-%m-%d}",
        )
    console.print(table)


# -- trust lists and the LOTL ------------------------------------------------------------------


def _show(data: dict[str, Any]) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))


ListKeyOpt = Annotated[Path, typer.Option("--key", help="The signer's private key.")]
ListOutOpt = Annotated[Path, typer.Option("--out", help="Where to write the signed list (JWS).")]
ListPassOpt = Annotated[
    str | None, typer.Option("--key-passphrase-env", help="Env variable with its passphrase.")
]


def _sign_to(
    sign: Callable[..., bytes],
    document: TrustList | Lotl,
    cert: Path,
    key: Path,
    passphrase_env: str | None,
    out: Path,
) -> None:
    jws = sign(document, _holder_signer(key, passphrase_env), chain=_load_certs(cert))
    out.write_bytes(jws)
    console.print(f"signed {document.name} -> {out}")


@trustlist_app.command("publish")
def trustlist_publish(
    source: Annotated[Path, typer.Argument(help="The unsigned trust list (JSON, see schema).")],
    cert: Annotated[Path, typer.Option(help="The scheme operator's signer certificate (chain).")],
    key: ListKeyOpt,
    out: ListOutOpt,
    key_passphrase_env: ListPassOpt = None,
) -> None:
    """Sign a trust list as JWS (schema-checked first)."""
    trust_list = trust_list_from_json(_read(source, "trust list"), source=str(source))
    _sign_to(sign_trust_list, trust_list, cert, key, key_passphrase_env, out)


@trustlist_app.command("show")
def trustlist_show(file: Annotated[Path, typer.Argument()]) -> None:
    """Print a signed list's content (NOT verified; use verify/accept for that)."""
    _show(payload_of(_read(file, "list")))


@trustlist_app.command("accept")
@trustlist_app.command("verify")
def trustlist_accept(file: Annotated[Path, typer.Argument()]) -> None:
    """Verify a trust list against the accepted LOTL and keep it (accept and verify are one)."""
    with _home() as home:
        trust_list = home.trust.accept_trust_list(_read(file, "trust list"), source=str(file))
    console.print(f"accepted {trust_list.name} ({len(trust_list.providers)} provider(s))")


@lotl_app.command("publish")
def lotl_publish(
    source: Annotated[Path, typer.Argument(help="The unsigned LOTL (JSON, see schema).")],
    cert: Annotated[Path, typer.Option(help="The group operator's signer certificate.")],
    key: ListKeyOpt,
    out: ListOutOpt,
    key_passphrase_env: ListPassOpt = None,
) -> None:
    """Sign a LOTL as JWS (schema-checked first)."""
    lotl = lotl_from_json(_read(source, "LOTL"), source=str(source))
    _sign_to(sign_lotl, lotl, cert, key, key_passphrase_env, out)


@lotl_app.command("show")
def lotl_show(file: Annotated[Path, typer.Argument()]) -> None:
    """Print a signed LOTL's content (NOT verified)."""
    _show(payload_of(_read(file, "LOTL")))


@lotl_app.command("pin")
def lotl_pin(
    signers: Annotated[list[Path], typer.Argument(help="LOTL signer certificate(s).")],
) -> None:
    """Pin the group operator's LOTL signer certificate(s) in this home (out of band)."""
    _pin(signers, lambda home: home.trust.pin_lotl_signers, "LOTL signer certificate(s)")


@bridge_app.command("pin-anchor")
def pin_anchor(
    roots: Annotated[list[Path], typer.Argument(help="Root certificate(s) to trust.")],
) -> None:
    """Trust your own scheme's root(s) in a home without a CA (a company node)."""
    _pin(roots, lambda home: home.trust.pin_anchors, "trust anchor(s)")


def _pin(
    paths: list[Path],
    method: Callable[[Home], Callable[[list[x509.Certificate]], None]],
    what: str,
) -> None:
    """Read certificates (PEM, DER, .p7c) and pin them with ``method`` of the home."""
    certificates = [c for path in paths for c in _load_certs_any(path)]
    with _home() as home:
        method(home)(certificates)
    console.print(f"pinned {len(certificates)} {what}")


@lotl_app.command("accept")
@lotl_app.command("verify")
def lotl_accept(file: Annotated[Path, typer.Argument()]) -> None:
    """Verify a LOTL against the pinned signers and keep it (accept and verify are one)."""
    with _home() as home:
        lotl = home.trust.accept_lotl(_read(file, "LOTL"), source=str(file))
    console.print(f"accepted {lotl.name} ({len(lotl.pointers)} scheme(s))")
