"""The ``trustbridge`` command."""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from rich.markup import escape
from rich.table import Table

from trustbridge import __version__
from trustbridge.cli import _export
from trustbridge.cli._common import (
    _holder_signer,
    _home,
    _load_cert,
    _load_certs,
    _parse_time,
    _read,
    console,
    err,
    state,
)
from trustbridge.cli.assess import assess
from trustbridge.cli.credential import credential_app, profile_app
from trustbridge.cli.exchange import contract_app, exchange_app, message_app, onboard, session_app
from trustbridge.cli.log import log_app
from trustbridge.cli.opcua import opcua_app
from trustbridge.cli.policy import policy_app
from trustbridge.cli.provenance import provenance_app
from trustbridge.cli.remote import remote_app
from trustbridge.cli.simulate import simulate
from trustbridge.cli.trust import bridge_app, lotl_app, trustlist_app, verify
from trustbridge.errors import InputError, TrustbridgeError
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.home.delivery import (
    device_serial,
    write_bundle,
    write_device_files,
    write_private,
)
from trustbridge.home.home import EnrolmentProof, KeySpec, ProductionBatch
from trustbridge.home.records import CertificateInfo, Issued, RequestInfo
from trustbridge.pki.ca import NameConstraintsSpec
from trustbridge.pki.keys import (
    KeyType,
    generate_private_key,
    hash_for,
    private_key_pem,
)
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    SoftwareSubject,
    Subject,
    SubjectKind,
)
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.pki.revocation import Reason
from trustbridge.trust.schemes import TrustScheme, parse_oid

app = typer.Typer(
    name="trustbridge",
    help="Trust infrastructure for cross-border industrial supply chains: identities, "
    "trust schemes and the joint DE-JP demonstrator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scheme_app = typer.Typer(help="Trust schemes and their assurance levels.", no_args_is_help=True)
ca_app = typer.Typer(
    help="Certificate authorities: roots, issuing CAs, cross-home CAs.", no_args_is_help=True
)
request_app = typer.Typer(
    help="The release process: requests, approvals, rejections.", no_args_is_help=True
)
cert_app = typer.Typer(
    help="Issued certificates: list, show, export, renew, rekey.", no_args_is_help=True
)
officer_app = typer.Typer(help="Registration officers.", no_args_is_help=True)
enrol_app = typer.Typer(
    help="Enrolment of machines and software: tokens, production batches.", no_args_is_help=True
)
key_app = typer.Typer(help="Holder-side helpers: make a key and a CSR.", no_args_is_help=True)
crl_app = typer.Typer(
    help="Certificate revocation lists: issue, show, export.", no_args_is_help=True
)
ocsp_app = typer.Typer(
    help="OCSP: pre-sign responses, export them for a static HTTP server.", no_args_is_help=True
)
app.add_typer(scheme_app, name="scheme")
app.add_typer(ca_app, name="ca")
app.add_typer(request_app, name="request")
app.add_typer(cert_app, name="cert")
app.add_typer(officer_app, name="officer")
app.add_typer(enrol_app, name="enrol")
app.add_typer(key_app, name="key")
app.add_typer(crl_app, name="crl")
app.add_typer(ocsp_app, name="ocsp")
app.add_typer(remote_app, name="remote")
app.add_typer(bridge_app, name="bridge")
app.add_typer(trustlist_app, name="trustlist")
app.add_typer(lotl_app, name="lotl")
app.add_typer(credential_app, name="credential")
app.add_typer(profile_app, name="profile")
app.add_typer(policy_app, name="policy")
app.add_typer(exchange_app, name="exchange")
app.add_typer(session_app, name="session")
app.add_typer(contract_app, name="contract")
app.add_typer(message_app, name="message")
app.add_typer(log_app, name="log")
app.add_typer(provenance_app, name="provenance")
app.add_typer(opcua_app, name="opcua")
app.command("verify")(verify)
app.command("assess")(assess)
app.command("onboard")(onboard)
app.command("simulate")(simulate)


def _version(value: bool) -> None:
    if value:
        console.print(f"trustbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    home: Annotated[
        Path,
        typer.Option("--home", envvar="TRUSTBRIDGE_HOME", help="The node's home folder."),
    ] = Path(".trustbridge"),
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """trustbridge: secure digital identities and linked trust schemes for Industrie 4.0."""
    state.home_path = home


# -- shared option types ---------------------------------------------------------------------

KeyTypeOpt = Annotated[
    str, typer.Option("--key-type", help="p256, p384, ed25519, rsa2048, rsa3072.")
]
Pkcs11Opt = Annotated[
    str | None,
    typer.Option(
        "--pkcs11", help="Keep the key in a PKCS#11 token: pkcs11:token=T;object=L?module-path=M"
    ),
]
PassEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        help="Environment variable holding the new key's passphrase (or token PIN).",
    ),
]
PassFileOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase-file", help="File in the home (mode 600) holding the passphrase (or PIN)."
    ),
]


def _key_spec(
    key_type: str, pkcs11: str | None, passphrase_env: str | None, passphrase_file: str | None
) -> KeySpec:
    return KeySpec(
        key_type=KeyType.parse(key_type),
        pkcs11_uri=pkcs11,
        secret=SecretSource(env=passphrase_env, file=passphrase_file),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        write_private(path, data)
    else:
        path.write_bytes(data)


def _pem(certs: Any) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


# -- init ------------------------------------------------------------------------------------


@app.command()
def init(
    name: Annotated[
        str | None, typer.Option(help="Node name (defaults to the folder name).")
    ] = None,
    host: Annotated[str, typer.Option(help="Host the node's URLs name.")] = "127.0.0.1",
    http_port: Annotated[
        int, typer.Option(help="Port for public artifacts (CRL, OCSP, CA certificates).")
    ] = 8080,
    https_port: Annotated[int, typer.Option(help="Port for the API.")] = 8443,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://...; default: SQLite in the home."
        ),
    ] = None,
) -> None:
    """Create a home: configuration, database schema, key folder."""
    home = Home.init(
        state.home_path,
        node_name=name,
        host=host,
        http_port=http_port,
        https_port=https_port,
        database_url=database_url,
    )
    console.print(
        f"created home [bold]{escape(str(home.path))}[/] for node "
        f"[bold]{escape(home.config.node_name)}[/] "
        f"({home.engine.url.get_backend_name()})",
        markup=True,
    )
    home.close()


# -- schemes ---------------------------------------------------------------------------------


@scheme_app.command("create")
def scheme_create(
    code: Annotated[str, typer.Argument(help="Short code, e.g. de or jp.")],
    name: Annotated[str, typer.Option(help="Human name of the scheme.")],
    level: Annotated[
        list[str],
        typer.Option(
            "--level", help="Level NAME or NAME=OID, lowest first; repeat for each level."
        ),
    ],
) -> None:
    """Create a trust scheme with ordered assurance levels (each a certificate policy OID)."""
    levels = []
    for item in level:
        level_name, _, oid = item.partition("=")
        levels.append((level_name.strip(), parse_oid(oid) if oid else None))
    with _home() as home:
        scheme = home.create_scheme(TrustScheme.create(code, name, levels))
    _print_scheme(scheme)


def _print_scheme(scheme: TrustScheme) -> None:
    table = Table(title=f"scheme {scheme.code}: {scheme.name}")
    table.add_column("rank")
    table.add_column("level")
    table.add_column("policy OID")
    for lv in scheme.levels:
        table.add_row(str(lv.rank), lv.name, lv.oid.dotted_string)
    console.print(table)


@scheme_app.command("list")
def scheme_list() -> None:
    """List the schemes of this home."""
    with _home() as home:
        for scheme in home.schemes():
            _print_scheme(scheme)


@scheme_app.command("export")
def scheme_export(
    code: str,
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Export a scheme's definition (JSON), so that other homes can import it."""
    with _home() as home:
        scheme = home.scheme(code)
    data = json.dumps(
        {
            "code": scheme.code,
            "name": scheme.name,
            "levels": [{"name": lv.name, "oid": lv.oid.dotted_string} for lv in scheme.levels],
        },
        indent=2,
    )
    if out:
        _write(out, data.encode() + b"\n")
    else:
        console.print_json(data)


@scheme_app.command("import")
def scheme_import(file: Path) -> None:
    """Import a scheme exported by another home (same codes, same policy OIDs)."""
    try:
        data = json.loads(_read(file, "scheme file"))
        scheme = TrustScheme.create(
            data["code"],
            data["name"],
            [(lv["name"], parse_oid(lv["oid"])) for lv in data["levels"]],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{file} is not a scheme export: {exc}") from None
    with _home() as home:
        home.create_scheme(scheme)
    _print_scheme(scheme)


# -- certificate authorities ----------------------------------------------------------------


@ca_app.command("create-root")
def ca_create_root(
    scheme: Annotated[str, typer.Option(help="Scheme code.")],
    name: Annotated[str, typer.Option(help="Common name, e.g. 'DE Industrial Root CA'.")],
    slug: Annotated[str | None, typer.Option(help="Short name (default: from the name).")] = None,
    country: Annotated[str | None, typer.Option()] = None,
    organization: Annotated[str | None, typer.Option()] = None,
    key_type: KeyTypeOpt = "p384",
    pkcs11: Pkcs11Opt = None,
    passphrase_env: PassEnvOpt = None,
    passphrase_file: PassFileOpt = None,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 20 * 365,
    path_length: Annotated[int, typer.Option(help="pathLenConstraint.")] = 1,
) -> None:
    """Create a self-signed root CA of a scheme."""
    with _home() as home:
        info = home.create_root_ca(
            scheme=scheme,
            name=name,
            slug=slug,
            country=country,
            organization=organization,
            key=_key_spec(key_type, pkcs11, passphrase_env, passphrase_file),
            lifetime=timedelta(days=days),
            path_length=path_length,
        )
    console.print(
        f"root CA [bold]{info.slug}[/] created ({info.key_store} key, {info.key_type})", markup=True
    )


def _name_constraints(
    permit_dns: list[str],
    exclude_dns: list[str],
    permit_email: list[str],
    permit_uri: list[str],
    permit_dn: list[str],
) -> NameConstraintsSpec:
    return NameConstraintsSpec(
        permitted_dns=tuple(permit_dns),
        excluded_dns=tuple(exclude_dns),
        permitted_email=tuple(permit_email),
        permitted_uri=tuple(permit_uri),
        permitted_dn=tuple(permit_dn),
    )


KindsOpt = Annotated[
    list[str], typer.Option("--kind", help="organization, person, machine, software; repeat.")
]
LevelsOpt = Annotated[
    list[str], typer.Option("--level", help="Level names it may issue (default: all).")
]
RolesOpt = Annotated[
    list[str], typer.Option("--role", help="Roles it may grant to persons; repeat.")
]
PermitDns = Annotated[
    list[str], typer.Option("--permit-dns", help="nameConstraints permitted DNS subtree.")
]
ExcludeDns = Annotated[
    list[str], typer.Option("--exclude-dns", help="nameConstraints excluded DNS subtree.")
]
PermitEmail = Annotated[list[str], typer.Option("--permit-email", help="Permitted e-mail domain.")]
PermitUri = Annotated[list[str], typer.Option("--permit-uri", help="Permitted URI host.")]
PermitDn = Annotated[
    list[str], typer.Option("--permit-dn", help="Permitted directory name, e.g. C=DE.")
]


def _kinds(values: list[str]) -> list[SubjectKind]:
    try:
        return [SubjectKind(v) for v in values]
    except ValueError:
        raise InputError(
            f"unknown subject kind in {values}; use organization, person, machine, software"
        ) from None


@ca_app.command("create-issuing")
def ca_create_issuing(
    parent: Annotated[str, typer.Option(help="Parent CA (short name) in this home.")],
    name: Annotated[str, typer.Option(help="Common name of the new CA.")],
    kind: KindsOpt,
    level: LevelsOpt = [],  # noqa: B006 - typer reads the default
    role: RolesOpt = [],  # noqa: B006
    slug: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str | None, typer.Option()] = None,
    organization: Annotated[str | None, typer.Option()] = None,
    key_type: KeyTypeOpt = "p256",
    pkcs11: Pkcs11Opt = None,
    passphrase_env: PassEnvOpt = None,
    passphrase_file: PassFileOpt = None,
    days: Annotated[int, typer.Option()] = 8 * 365,
    path_length: Annotated[int, typer.Option()] = 0,
    permit_dns: PermitDns = [],  # noqa: B006
    exclude_dns: ExcludeDns = [],  # noqa: B006
    permit_email: PermitEmail = [],  # noqa: B006
    permit_uri: PermitUri = [],  # noqa: B006
    permit_dn: PermitDn = [],  # noqa: B006
) -> None:
    """Create an issuing CA below a CA of this home, restricted to kinds, levels and roles."""
    with _home() as home:
        info = home.create_issuing_ca(
            parent=parent,
            name=name,
            kinds=_kinds(kind),
            levels=level or None,
            roles=[Role.parse(r) for r in role],
            slug=slug,
            country=country,
            organization=organization,
            key=_key_spec(key_type, pkcs11, passphrase_env, passphrase_file),
            lifetime=timedelta(days=days),
            path_length=path_length,
            name_constraints=_name_constraints(
                permit_dns, exclude_dns, permit_email, permit_uri, permit_dn
            ),
        )
    console.print(
        f"issuing CA [bold]{info.slug}[/] created below {parent}: "
        f"kinds {', '.join(info.kinds)}; levels {', '.join(info.levels)}",
        markup=True,
    )


@ca_app.command("request")
def ca_request(
    scheme: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    out: Annotated[Path, typer.Option(help="Where to write the CSR (PEM).")],
    slug: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str | None, typer.Option()] = None,
    organization: Annotated[str | None, typer.Option()] = None,
    key_type: KeyTypeOpt = "p256",
    pkcs11: Pkcs11Opt = None,
    passphrase_env: PassEnvOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Create the key of a CA whose parent is in another home, and write its CSR."""
    with _home() as home:
        info, csr = home.request_subordinate_ca(
            scheme=scheme,
            name=name,
            slug=slug,
            country=country,
            organization=organization,
            key=_key_spec(key_type, pkcs11, passphrase_env, passphrase_file),
        )
    _write(out, csr.public_bytes(Encoding.PEM))
    console.print(
        f"CA [bold]{info.slug}[/] awaits its certificate; CSR written to {escape(str(out))}",
        markup=True,
    )


@ca_app.command("certify")
def ca_certify(
    parent: Annotated[str, typer.Option()],
    csr: Annotated[Path, typer.Option(help="The subordinate CA's CSR.")],
    kind: KindsOpt,
    out: Annotated[Path, typer.Option(help="Where to write the certificate (PEM).")],
    chain_out: Annotated[Path, typer.Option(help="Where to write the parent's chain (PEM).")],
    level: LevelsOpt = [],  # noqa: B006
    role: RolesOpt = [],  # noqa: B006
    days: Annotated[int, typer.Option()] = 8 * 365,
    path_length: Annotated[int, typer.Option()] = 0,
    permit_dns: PermitDns = [],  # noqa: B006
    exclude_dns: ExcludeDns = [],  # noqa: B006
    permit_email: PermitEmail = [],  # noqa: B006
    permit_uri: PermitUri = [],  # noqa: B006
    permit_dn: PermitDn = [],  # noqa: B006
) -> None:
    """Certify another home's CA from its CSR."""
    with _home() as home:
        certificate = home.certify_subordinate_ca(
            parent=parent,
            csr_data=_read(csr, "CSR"),
            kinds=_kinds(kind),
            levels=level or None,
            roles=[Role.parse(r) for r in role],
            lifetime=timedelta(days=days),
            path_length=path_length,
            source=str(csr),
            name_constraints=_name_constraints(
                permit_dns, exclude_dns, permit_email, permit_uri, permit_dn
            ),
        )
        chain = home.chain_of(parent)
    _write(out, certificate.public_bytes(Encoding.PEM))
    _write(chain_out, _pem(chain))
    console.print(f"certified {certificate.subject.rfc4514_string()}; certificate in {out}")


@ca_app.command("install")
def ca_install(
    slug: str,
    cert: Annotated[Path, typer.Option(help="The certificate the parent issued.")],
    chain: Annotated[Path, typer.Option(help="The parent's chain, parent first, root last.")],
) -> None:
    """Install the certificate another home's CA issued for one of this home's CAs."""
    with _home() as home:
        info = home.install_ca_certificate(slug, _load_cert(cert), _load_certs(chain))
    console.print(
        f"CA [bold]{info.slug}[/] is active: kinds {', '.join(info.kinds) or '-'}; "
        f"levels {', '.join(info.levels)}",
        markup=True,
    )


@ca_app.command("list")
def ca_list() -> None:
    """List the CAs of this home."""
    with _home() as home:
        cas = home.cas()
    table = Table(title="certificate authorities")
    for col in ("slug", "scheme", "parent", "state", "kinds", "levels", "key", "valid until"):
        table.add_column(col)
    for info in cas:
        table.add_row(
            info.slug,
            info.scheme,
            info.parent or ("root" if info.is_root else "other home"),
            info.state,
            ", ".join(info.kinds) or "CAs",
            ", ".join(info.levels),
            f"{info.key_store}/{info.key_type}",
            f"{info.certificate.not_valid_after_utc:%Y-%m-%d}" if info.certificate else "-",
        )
    console.print(table)


@ca_app.command("export")
def ca_export(
    slug: str, out: Annotated[Path | None, typer.Option(help="File (default: stdout).")] = None
) -> None:
    """Write the CA's certificate and its chain up to the root (PEM)."""
    with _home() as home:
        data = _pem(home.chain_of(slug))
    if out:
        _write(out, data)
    else:
        sys.stdout.write(data.decode())


# -- requests --------------------------------------------------------------------------------


def _subject(
    kind: SubjectKind,
    *,
    organization: str | None,
    country: str | None,
    org_id: str | None,
    locality: str | None,
    given_name: str | None,
    surname: str | None,
    email: str | None,
    person_id: str | None,
    role: list[str],
    manufacturer: str | None,
    model: str | None,
    serial_number: str | None,
    uri: str | None,
    dns: list[str],
    software: str | None,
    version: str | None,
    ip: list[str],
) -> Subject:
    def need(value: str | None, flag: str) -> str:
        if not value:
            raise InputError(f"{kind} identities need {flag}")
        return value

    if kind in (SubjectKind.ORGANIZATION, SubjectKind.PERSON) and (dns or ip):
        raise InputError(
            f"{kind} identities carry no DNS names or IP addresses (--dns, --ip are for "
            "machines and software)"
        )

    if kind is SubjectKind.ORGANIZATION:
        return OrganizationSubject(
            name=need(organization, "--organization"),
            country=need(country, "--country"),
            identifier=need(org_id, "--org-id"),
            locality=locality,
        )
    if kind is SubjectKind.PERSON:
        return PersonSubject(
            given_name=need(given_name, "--given-name"),
            surname=need(surname, "--surname"),
            country=need(country, "--country"),
            organization=need(organization, "--organization"),
            organization_identifier=org_id,
            email=email,
            serial_number=person_id,
            roles=frozenset(Role.parse(r) for r in role),
        )
    if kind is SubjectKind.MACHINE:
        return MachineSubject(
            manufacturer=need(manufacturer or organization, "--manufacturer"),
            model=need(model, "--model"),
            serial_number=need(serial_number, "--serial-number"),
            country=need(country, "--country"),
            application_uri=uri,
            dns_names=tuple(dns),
            ip_addresses=tuple(ip),
        )
    return SoftwareSubject(
        name=need(software, "--software"),
        version=need(version, "--version"),
        organization=need(organization, "--organization"),
        organization_identifier=need(org_id, "--org-id"),
        country=need(country, "--country"),
        dns_names=tuple(dns),
        ip_addresses=tuple(ip),
    )


def _print_request(info: RequestInfo) -> None:
    table = Table(show_header=False, title=f"request {info.id}")
    for key, value in (
        ("state", info.state),
        ("CA", info.ca),
        ("kind", f"{info.kind} ({info.purpose})"),
        ("level", info.level),
        ("subject", json.dumps(info.subject, ensure_ascii=False)),
        ("key", f"{info.key_origin} {info.key_fingerprint or ''}".strip()),
        ("requested", f"{info.requested_at:%Y-%m-%d %H:%M:%S}Z by {info.requested_by_display}"),
        (
            "decided",
            f"{info.decided_at:%Y-%m-%d %H:%M:%S}Z by {info.decided_by_display}"
            if info.decided_at
            else "-",
        ),
        ("rule/reason", f"{info.decision_rule or '-'} / {info.decision_reason or '-'}"),
        ("digest", info.digest),
    ):
        table.add_row(key, value)
    console.print(table)


def _report(result: RequestInfo | Issued, out: Path | None) -> None:
    if isinstance(result, RequestInfo):
        console.print(
            f"request [bold]{result.id}[/] is {result.state}: a registration officer "
            f"must approve it (trustbridge request approve {result.id} ...)",
            markup=True,
        )
        return
    _write_issued(result, out)


def _write_issued(result: Issued, out: Path | None) -> None:
    for cert in result.certificates:
        serial = format(cert.serial_number, "x")
        console.print(
            f"issued [bold]{serial}[/] to {escape(cert.subject.rfc4514_string())}", markup=True
        )
    if out is None:
        if result.generated_keys:
            raise InputError("a generated key must be delivered: pass --out DIR")
        return
    out.mkdir(parents=True, exist_ok=True)
    for index, cert in enumerate(result.certificates):
        stem = out / format(cert.serial_number, "x")
        _write(stem.with_suffix(".pem"), cert.public_bytes(Encoding.PEM))
        _write(out / f"{stem.name}.chain.pem", _pem(result.chain))
        if result.generated_keys:
            _write(
                stem.with_suffix(".key.pem"),
                private_key_pem(result.generated_keys[index]),
                private=True,
            )
        console.print(
            f"  written to {stem}.pem"
            + (" with its generated key" if result.generated_keys else "")
        )


SubjectOpts = dict[str, Any]


@request_app.command("submit")
def request_submit(
    ca: Annotated[str, typer.Option(help="Issuing CA (short name).")],
    kind: Annotated[str, typer.Option(help="organization, person, machine or software.")],
    level: Annotated[str, typer.Option(help="Assurance level name, e.g. de-high.")],
    csr: Annotated[Path | None, typer.Option(help="The holder's PKCS#10 CSR (PEM or DER).")] = None,
    generate_key: Annotated[
        str | None,
        typer.Option(help="Machines at manufacture only: the CA generates a key of this type."),
    ] = None,
    purpose: Annotated[str, typer.Option(help="identity or key-agreement.")] = "identity",
    days: Annotated[
        int | None, typer.Option(help="Validity in days (default: the profile's).")
    ] = None,
    organization: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str | None, typer.Option()] = None,
    org_id: Annotated[
        str | None, typer.Option(help="organizationIdentifier, e.g. VATDE-123456789.")
    ] = None,
    locality: Annotated[str | None, typer.Option()] = None,
    given_name: Annotated[str | None, typer.Option()] = None,
    surname: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    person_id: Annotated[
        str | None, typer.Option(help="Person's semantic identifier (serialNumber).")
    ] = None,
    role: RolesOpt = [],  # noqa: B006
    manufacturer: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    serial_number: Annotated[str | None, typer.Option()] = None,
    uri: Annotated[str | None, typer.Option(help="Machine application URI (e.g. OPC UA).")] = None,
    dns: Annotated[list[str], typer.Option(help="DNS name SAN; repeat.")] = [],  # noqa: B006
    ip: Annotated[
        list[str],
        typer.Option("--ip", help="IP address SAN (IPv4 or IPv6), machines and software; repeat."),
    ] = [],  # noqa: B006
    software: Annotated[str | None, typer.Option(help="Software name.")] = None,
    version: Annotated[str | None, typer.Option(help="Software version.")] = None,
    enrol_cert: Annotated[
        Path | None, typer.Option(help="Enrolment credential (organization certificate).")
    ] = None,
    enrol_key: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    key_passphrase_env: Annotated[
        str | None, typer.Option(help="Env variable with that key's passphrase.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding a one-time enrolment token.")
    ] = None,
    as_cert: Annotated[
        Path | None, typer.Option(help="Submit as this identity (certificate).")
    ] = None,
    as_key: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the certificate if released at once.")
    ] = None,
) -> None:
    """Submit an issuance request; an approval rule may release it at once."""
    subject_kind = _kinds([kind])[0]
    subject = _subject(
        subject_kind,
        organization=organization,
        country=country,
        org_id=org_id,
        locality=locality,
        given_name=given_name,
        surname=surname,
        email=email,
        person_id=person_id,
        role=role,
        manufacturer=manufacturer,
        model=model,
        serial_number=serial_number,
        uri=uri,
        dns=dns,
        ip=ip,
        software=software,
        version=version,
    )
    try:
        purpose_value = Purpose(purpose)
    except ValueError:
        raise InputError(f"purpose {purpose!r} must be identity or key-agreement") from None
    token = None
    if token_file is not None:
        token = _read(token_file, "token file").decode().strip()
    elif os.environ.get("TRUSTBRIDGE_ENROLMENT_TOKEN"):
        token = os.environ["TRUSTBRIDGE_ENROLMENT_TOKEN"]
    with _home() as home:
        requester = None
        if as_cert or as_key:
            if not (as_cert and as_key):
                raise InputError("--as-cert and --as-key go together")
            requester = _authenticated_requester(home, as_cert, as_key, key_passphrase_env)
        enrolment = None
        csr_data = _read(csr, "CSR") if csr else None
        if enrol_cert or enrol_key:
            if not (enrol_cert and enrol_key):
                raise InputError("--enrol-cert and --enrol-key go together")
            enrolment = _enrolment_proof(
                home,
                enrol_cert,
                enrol_key,
                key_passphrase_env,
                ca=ca,
                subject=subject,
                level=level,
                csr_data=csr_data,
                purpose=purpose_value,
                days=days,
            )
        result = home.submit_request(
            ca=ca,
            subject=subject,
            level=level,
            csr_data=csr_data,
            csr_source=str(csr),
            generate_key=KeyType.parse(generate_key) if generate_key else None,
            purpose=purpose_value,
            lifetime_days=days,
            requester=requester,
            enrolment=enrolment,
            enrolment_token=token,
        )
    _report(result, out)


def _authenticated_requester(
    home: Home, cert_path: Path, key_path: Path, passphrase_env: str | None
) -> Any:
    from trustbridge.pki.release import verify_statement_signature

    certificate = _load_cert(cert_path)
    signer = _holder_signer(key_path, passphrase_env)
    challenge = f"trustbridge-requester/v1\n{datetime.now(UTC).isoformat()}".encode()
    verify_statement_signature(certificate, challenge, sign_statement(challenge, signer))
    return home.verify_identity(certificate).principal


def _enrolment_proof(
    home: Home,
    cert_path: Path,
    key_path: Path,
    passphrase_env: str | None,
    *,
    ca: str,
    subject: Subject,
    level: str,
    csr_data: bytes | None,
    purpose: Purpose,
    days: int | None,
) -> EnrolmentProof:
    """Sign the request's digest with the enrolment credential, as the holder's side does."""
    digest = home.request_digest_for(
        ca=ca, subject=subject, level=level, csr_data=csr_data, purpose=purpose, lifetime_days=days
    )
    signer = _holder_signer(key_path, passphrase_env)
    return EnrolmentProof.sign(_load_cert(cert_path), signer, digest)


@request_app.command("list")
def request_list(
    state_filter: Annotated[
        str | None, typer.Option("--state", help="pending, issued or rejected.")
    ] = None,
    ca: Annotated[str | None, typer.Option()] = None,
) -> None:
    """List requests."""
    with _home() as home:
        rows = home.requests(state=state_filter, ca=ca)
    table = Table(title="requests")
    for col in ("id", "state", "CA", "kind", "level", "holder", "requested by", "at"):
        table.add_column(col)
    for r in rows:
        holder = (
            r.subject.get("name")
            or " ".join(
                str(r.subject.get(k, ""))
                for k in ("given_name", "surname", "model", "serial_number")
            ).strip()
        )
        table.add_row(
            r.id,
            r.state,
            r.ca,
            r.kind,
            r.level,
            holder,
            r.requested_by_display,
            f"{r.requested_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@request_app.command("show")
def request_show(request_id: str) -> None:
    """Show one request, with the digest an officer's decision signs."""
    with _home() as home:
        _print_request(home.request(request_id))


def _decide(
    request_id: str,
    decision: Literal["approve", "reject"],
    officer_cert: Path,
    officer_key: Path,
    passphrase_env: str | None,
    reason: str,
    out: Path | None,
) -> None:
    with _home() as home:
        info = home.request(request_id)
        statement = Decision(
            request_id=request_id,
            request_digest=info.digest,
            decision=decision,
            at=home.now(),
            reason=reason,
        )
        signer = _holder_signer(officer_key, passphrase_env)
        signature = sign_statement(statement.payload(), signer)
        result = home.decide(
            request_id, decision=statement, signature=signature, officer=_load_cert(officer_cert)
        )
    if isinstance(result, RequestInfo):
        console.print(f"request [bold]{request_id}[/] {result.state}", markup=True)
    else:
        _write_issued(result, out)


@request_app.command("approve")
def request_approve(
    request_id: str,
    officer_cert: Annotated[Path, typer.Option(help="Your registration-officer certificate.")],
    officer_key: Annotated[Path, typer.Option(help="Its private key; signs the approval.")],
    key_passphrase_env: Annotated[
        str | None, typer.Option(help="Env variable with the key's passphrase.")
    ] = None,
    reason: Annotated[str, typer.Option()] = "approved",
    out: Annotated[Path | None, typer.Option(help="Folder for the issued certificate.")] = None,
) -> None:
    """Approve a request with a signed decision (four eyes: not your own)."""
    _decide(request_id, "approve", officer_cert, officer_key, key_passphrase_env, reason, out)


@request_app.command("reject")
def request_reject(
    request_id: str,
    officer_cert: Annotated[Path, typer.Option()],
    officer_key: Annotated[Path, typer.Option()],
    reason: Annotated[str, typer.Option(help="Why; recorded and shown to the requester.")],
    key_passphrase_env: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Reject a request with a signed decision."""
    _decide(request_id, "reject", officer_cert, officer_key, key_passphrase_env, reason, None)


# -- officers --------------------------------------------------------------------------------


@officer_app.command("bootstrap")
def officer_bootstrap(
    ca: Annotated[str, typer.Option(help="Issuing CA for persons.")],
    level: Annotated[str, typer.Option()],
    csr: Annotated[Path, typer.Option(help="The officer's own CSR.")],
    given_name: Annotated[str, typer.Option()],
    surname: Annotated[str, typer.Option()],
    organization: Annotated[str, typer.Option()],
    country: Annotated[str, typer.Option()],
    out: Annotated[Path, typer.Option(help="Folder for the certificate.")],
    org_id: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    role: RolesOpt = [],  # noqa: B006
) -> None:
    """Issue the home's first registration officer (only while it has none)."""
    roles = frozenset({Role.REGISTRATION_OFFICER, *(Role.parse(r) for r in role)})
    subject = PersonSubject(
        given_name=given_name,
        surname=surname,
        country=country,
        organization=organization,
        organization_identifier=org_id,
        email=email,
        roles=roles,
    )
    with _home() as home:
        result = home.bootstrap_officer(
            ca=ca, subject=subject, level=level, csr_data=_read(csr, "CSR"), csr_source=str(csr)
        )
    _write_issued(result, out)


# -- enrolment -------------------------------------------------------------------------------


@enrol_app.command("token")
def enrol_token(
    organization: Annotated[
        str, typer.Option(help="Organization whose machines/software it enrols.")
    ],
    out: Annotated[Path, typer.Option(help="File to write the token to (mode 600).")],
    kind: KindsOpt = ["machine", "software"],  # noqa: B006
    hours: Annotated[int, typer.Option(help="Validity in hours.")] = 24,
) -> None:
    """Create a one-time enrolment token (shown once, stored only as a hash)."""
    with _home() as home:
        token = home.create_enrolment_token(
            organization=organization, kinds=_kinds(kind), valid_for=timedelta(hours=hours)
        )
    _write(out, token.encode() + b"\n", private=True)
    console.print(f"one-time enrolment token for {organization} written to {out}")


@enrol_app.command("batch")
def enrol_batch(
    ca: Annotated[str, typer.Option()],
    manufacturer: Annotated[str, typer.Option()],
    model: Annotated[str, typer.Option()],
    country: Annotated[str, typer.Option()],
    level: Annotated[str, typer.Option()],
    enrol_cert: Annotated[Path, typer.Option(help="The manufacturer's organization certificate.")],
    enrol_key: Annotated[Path, typer.Option(help="Its private key; signs the batch.")],
    out: Annotated[
        Path, typer.Option(help="Folder for the device PEMs (key + certificate, mode 600).")
    ],
    serials_file: Annotated[
        Path | None, typer.Option(help="File with one serial number per line.")
    ] = None,
    serial_prefix: Annotated[
        str, typer.Option(help="With --count: serials PREFIX000001...")
    ] = "SN",
    count: Annotated[
        int, typer.Option(help="Number of devices when no serials file is given.")
    ] = 0,
    key_type: KeyTypeOpt = "p256",
    uri_template: Annotated[
        str | None, typer.Option(help="e.g. urn:hayabusa:hps-200:{serial}")
    ] = None,
    key_passphrase_env: Annotated[str | None, typer.Option()] = None,
    days: Annotated[int | None, typer.Option()] = None,
    bundle: Annotated[
        bool,
        typer.Option(
            help="Write one PEM bundle per chunk of devices (key then certificate, device after "
            "device) instead of one file per device."
        ),
    ] = False,
) -> None:
    """Issue machine identities for a production batch; the CA generates the device keys."""
    if serials_file:
        serials = [
            s.strip()
            for s in _read(serials_file, "serials file").decode().splitlines()
            if s.strip()
        ]
    elif count > 0:
        serials = [f"{serial_prefix}{i:06d}" for i in range(1, count + 1)]
    else:
        raise InputError("give --serials-file or --count")
    batch = ProductionBatch(
        ca=ca,
        manufacturer=manufacturer,
        model=model,
        country=country,
        serial_numbers=tuple(serials),
        level=level,
        key_type=KeyType.parse(key_type),
        uri_template=uri_template,
        lifetime_days=days,
    )
    out.mkdir(parents=True, exist_ok=True)
    with _home() as home:
        signer = _holder_signer(enrol_key, key_passphrase_env)
        proof = EnrolmentProof.sign(_load_cert(enrol_cert), signer, home.batch_digest(batch))
        _write(out / "chain.pem", _pem(home.chain_of(ca)))
        done = 0
        for certs, keys in home.issue_machine_batch(batch, enrolment=proof):
            if bundle:
                first, last = device_serial(certs[0]), device_serial(certs[-1])
                write_bundle(out / f"devices-{first}-{last}.pem", certs, keys)
            else:
                write_device_files(out, certs, keys)
            done += len(certs)
            console.print(f"  {done}/{len(serials)} issued")
    console.print(f"production batch of {len(serials)} {model} identities written to {out}")


# -- certificates ----------------------------------------------------------------------------


@cert_app.command("list")
def cert_list(
    kind: Annotated[str | None, typer.Option()] = None,
    holder: Annotated[str | None, typer.Option(help="Substring of the holder's name.")] = None,
    ca: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    expiring_days: Annotated[
        int | None, typer.Option(help="Only those expiring within N days.")
    ] = None,
    limit: Annotated[int, typer.Option()] = 200,
) -> None:
    """List and search issued certificates."""
    with _home() as home:
        before = home.now() + timedelta(days=expiring_days) if expiring_days is not None else None
        rows = home.certificates(
            kind=kind, holder=holder, ca=ca, status=status, expiring_before=before, limit=limit
        )
    table = Table(title=f"certificates ({len(rows)})")
    for col in ("serial", "CA", "kind", "holder", "level", "valid until", "status", "key"):
        table.add_column(col)
    for c in rows:
        table.add_row(
            c.serial,
            c.ca,
            c.kind if c.purpose in ("identity", "ca") else f"{c.kind}/{c.purpose}",
            c.holder,
            c.level,
            f"{c.not_after:%Y-%m-%d}",
            c.status,
            c.key_origin,
        )
    console.print(table)


@cert_app.command("show")
def cert_show(serial: str, ca: Annotated[str | None, typer.Option()] = None) -> None:
    """Show one certificate and its record."""
    with _home() as home:
        c = home.certificate(serial, ca=ca)
    table = Table(show_header=False, title=f"certificate {c.serial}")
    for key, value in (
        ("subject", c.subject_dn),
        ("CA", c.ca),
        ("kind", f"{c.kind} ({c.purpose})"),
        ("level", c.level),
        ("valid", f"{c.not_before:%Y-%m-%d %H:%M} .. {c.not_after:%Y-%m-%d %H:%M} UTC"),
        ("status", c.status),
        ("key origin", c.key_origin),
        ("SHA-256", c.fingerprint),
        ("request", c.request_id or "-"),
        ("issued", f"{c.issued_at:%Y-%m-%d %H:%M:%S}Z by {c.issued_by}"),
        *_revocation_rows(c),
    ):
        table.add_row(key, value)
    console.print(table)


def _revocation_rows(c: CertificateInfo) -> list[tuple[str, str]]:
    rows = []
    if c.revoked_at is not None:
        since = "on hold since" if c.status == "on-hold" else "revoked"
        rows.append((since, f"{c.revoked_at:%Y-%m-%d %H:%M:%S}Z"))
    if c.revocation_reason and c.status == "revoked":
        rows.append(("reason", c.revocation_reason))
    if c.invalidity_date is not None:
        rows.append(("compromised since", f"{c.invalidity_date:%Y-%m-%d %H:%M:%S}Z"))
    return rows


@cert_app.command("export")
def cert_export(
    serial: str,
    out: Annotated[Path, typer.Option(help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="pem, der, chain or p12.")] = "pem",
    ca: Annotated[str | None, typer.Option()] = None,
    key: Annotated[Path | None, typer.Option(help="For p12: the holder's private key.")] = None,
    key_passphrase_env: Annotated[str | None, typer.Option()] = None,
    p12_passphrase_env: Annotated[
        str | None, typer.Option(help="Env variable with the PKCS#12 password.")
    ] = None,
) -> None:
    """Export a certificate as PEM, DER, PEM chain (leaf to root) or PKCS#12 (with its key)."""
    with _home() as home:
        info = home.certificate(serial, ca=ca)
        chain = home.chain_for(info)
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | None = (
        None
    )
    if fmt == "p12":
        if key is None:
            raise InputError("a PKCS#12 needs the holder's key: pass --key")
        holder_key = _holder_signer(key, key_passphrase_env).key
        if not isinstance(
            holder_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise InputError(f"{key} holds a key PKCS#12 export does not support")
        private = holder_key
    password = os.environ.get(p12_passphrase_env, "").encode() if p12_passphrase_env else None
    _write(
        out,
        _export.export(info.certificate, chain, fmt, key=private, password=password),
        private=fmt == "p12",
    )
    console.print(f"wrote {fmt} of {info.serial} to {out}")


def _renewal_report(result: RequestInfo | Issued, out: Path | None) -> None:
    _report(result, out)


@cert_app.command("renew")
def cert_renew(
    serial: str,
    ca: Annotated[str | None, typer.Option()] = None,
    days: Annotated[int | None, typer.Option()] = None,
    enrol_cert: Annotated[Path | None, typer.Option()] = None,
    enrol_key: Annotated[Path | None, typer.Option()] = None,
    key_passphrase_env: Annotated[str | None, typer.Option()] = None,
    out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Renew a certificate: same subject, same key, new validity (goes through release)."""
    with _home() as home:
        proof = None
        if enrol_cert and enrol_key:
            digest = home.renewal_digest(serial, ca=ca, lifetime_days=days)
            proof = EnrolmentProof.sign(
                _load_cert(enrol_cert), _holder_signer(enrol_key, key_passphrase_env), digest
            )
        result = home.renew(serial, ca=ca, lifetime_days=days, enrolment=proof)
    _renewal_report(result, out)


@cert_app.command("rekey")
def cert_rekey(
    serial: str,
    csr: Annotated[Path, typer.Option(help="CSR with the new key.")],
    ca: Annotated[str | None, typer.Option()] = None,
    days: Annotated[int | None, typer.Option()] = None,
    enrol_cert: Annotated[Path | None, typer.Option()] = None,
    enrol_key: Annotated[Path | None, typer.Option()] = None,
    key_passphrase_env: Annotated[str | None, typer.Option()] = None,
    out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Rekey a certificate: same subject, new key from a CSR (goes through release)."""
    csr_data = _read(csr, "CSR")
    with _home() as home:
        proof = None
        if enrol_cert and enrol_key:
            digest = home.renewal_digest(serial, ca=ca, lifetime_days=days, rekey_csr=csr_data)
            proof = EnrolmentProof.sign(
                _load_cert(enrol_cert), _holder_signer(enrol_key, key_passphrase_env), digest
            )
        result = home.rekey(
            serial,
            csr_data=csr_data,
            csr_source=str(csr),
            ca=ca,
            lifetime_days=days,
            enrolment=proof,
        )
    _renewal_report(result, out)


@app.command()
def audit(
    object_id: Annotated[
        str | None, typer.Option("--object", help="Only events about this object.")
    ] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Show the audit trail: who did what, when."""
    with _home() as home:
        events = home.audit_events(object_id=object_id, limit=limit)
    table = Table(title="audit trail")
    for col in ("at", "actor", "action", "object", "details"):
        table.add_column(col)
    for e in events:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor_display,
            e.action,
            f"{e.object_type} {e.object_id}",
            json.dumps(e.details, ensure_ascii=False),
        )
    console.print(table)


# -- holder helpers --------------------------------------------------------------------------


@key_app.command("create")
def key_create(
    csr: Annotated[Path, typer.Option(help="Where to write a CSR for the key.")],
    out: Annotated[
        Path | None, typer.Option(help="Private key file (PKCS#8 PEM, mode 600).")
    ] = None,
    key_type: KeyTypeOpt = "p256",
    pkcs11: Annotated[
        str | None,
        typer.Option(
            "--pkcs11",
            help="Generate the key inside a PKCS#11 token instead: "
            "pkcs11:token=T;object=L?module-path=M (PIN from --pin-env).",
        ),
    ] = None,
    pin_env: Annotated[
        str | None, typer.Option(help="Env variable holding the token's user PIN.")
    ] = None,
    common_name: Annotated[
        str, typer.Option(help="CN of the CSR (the CA sets the real subject).")
    ] = "trustbridge holder",
    passphrase_env: Annotated[
        str | None,
        typer.Option(help="Encrypt the key file with the passphrase in this env variable."),
    ] = None,
) -> None:
    """Generate a key on the holder's side (file or PKCS#11 token) and a CSR proving possession."""
    kind = KeyType.parse(key_type)
    signing_key: Any
    if pkcs11:
        if out is not None:
            raise InputError("a token key never leaves the token: give --pkcs11 or --out, not both")
        pin = os.environ.get(pin_env or "", "")
        if not pin:
            raise InputError("the token's PIN is needed: set --pin-env to an environment variable")
        from trustbridge.pki import pkcs11 as p11

        signer = p11.generate_key(p11.Pkcs11KeyRef.parse(pkcs11), kind, pin)
        signing_key = signer.private_key
        where = f"token key {signer.description}"
    else:
        if out is None:
            raise InputError("give --out for a key file, or --pkcs11 for a token key")
        if out.exists():
            raise InputError(f"{out} exists already; refusing to overwrite a key")
        passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
        if passphrase_env and not passphrase:
            raise InputError(f"environment variable {passphrase_env} is empty or unset")
        signing_key = generate_private_key(kind)
        _write(out, private_key_pem(signing_key, passphrase), private=True)
        where = f"key written to {out}"
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
        .sign(signing_key, hash_for(kind))
    )
    _write(csr, request.public_bytes(Encoding.PEM))
    console.print(f"{where}, CSR to {csr}")


# -- revocation --------------------------------------------------------------------------------

_REASONS = ", ".join(r.value for r in Reason if r is not Reason.CERTIFICATE_HOLD)


def _status_line(c: CertificateInfo) -> None:
    reason = f" ({c.revocation_reason})" if c.revocation_reason and c.status == "revoked" else ""
    console.print(
        f"certificate {c.serial} of CA {c.ca} ({escape(c.holder)}): "
        f"[bold]{c.status}[/]{escape(reason)}",
        markup=True,
    )


@app.command()
def revoke(
    serial: Annotated[str, typer.Argument(help="Serial number (hex, colons allowed, or decimal).")],
    reason: Annotated[str, typer.Option(help=f"RFC 5280 reason: {_REASONS}.")] = "unspecified",
    compromise_date: Annotated[
        str | None,
        typer.Option(help="When the key was (or may have been) compromised, ISO 8601 with zone."),
    ] = None,
    ca: Annotated[
        str | None, typer.Option(help="The issuing CA, where a serial is ambiguous.")
    ] = None,
) -> None:
    """Revoke a certificate for good; CRLs are reissued and OCSP answers at once."""
    parsed = Reason.parse(reason)
    invalidity = _parse_time(compromise_date, "compromise date") if compromise_date else None
    with _home() as home:
        info = home.status.revoke(serial, reason=parsed, ca=ca, invalidity_date=invalidity)
    _status_line(info)


@app.command()
def suspend(
    serial: Annotated[str, typer.Argument(help="Serial number.")],
    ca: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Put a certificate on hold (certificateHold); `trustbridge resume` lifts it."""
    _hold(serial, ca, lift=False)


@app.command()
def resume(
    serial: Annotated[str, typer.Argument(help="Serial number.")],
    ca: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Lift a hold: the certificate is good again."""
    _hold(serial, ca, lift=True)


def _hold(serial: str, ca: str | None, *, lift: bool) -> None:
    with _home() as home:
        change = home.status.resume if lift else home.status.suspend
        info = change(serial, ca=ca)
    _status_line(info)


@crl_app.command("issue")
def crl_issue(
    ca: Annotated[str | None, typer.Option(help="One CA (default: every active CA).")] = None,
    delta_only: Annotated[
        bool, typer.Option(help="Only a delta CRL on the latest full one.")
    ] = False,
) -> None:
    """Issue new CRLs now (a full CRL and a delta CRL on the previous full one)."""
    with _home() as home:
        slugs = [ca] if ca else [c.slug for c in home.cas() if c.state == "active"]
        for slug in slugs:
            for info in home.status.issue_crls(slug, full=not delta_only):
                kind = f"delta CRL (base {info.base_number})" if info.delta else "CRL"
                console.print(
                    f"{slug}: {kind} number {info.number}, {info.entries} entries, "
                    f"next update {info.next_update:%Y-%m-%d %H:%M}Z"
                )


@crl_app.command("show")
def crl_show(
    ca: Annotated[str, typer.Argument(help="The CA.")],
    delta: Annotated[bool, typer.Option(help="The latest delta CRL instead.")] = False,
) -> None:
    """Show the latest CRL of a CA and its entries."""
    with _home() as home:
        info = home.status.latest_crl(ca, delta=delta)
    crl = x509.load_der_x509_crl(info.der)
    title = f"{'delta ' if info.delta else ''}CRL {info.number} of {ca}"
    console.print(
        f"{title}: this update {info.this_update:%Y-%m-%d %H:%M}Z, next update "
        f"{info.next_update:%Y-%m-%d %H:%M}Z, {len(crl)} entries, {len(info.der):,} bytes"
    )
    table = Table()
    for col in ("serial", "revoked", "reason"):
        table.add_column(col)
    for index, entry in enumerate(crl):
        if index == 50:
            console.print(f"(first 50 of {len(crl)} entries shown)")
            break
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = "unspecified"
        table.add_row(
            format(entry.serial_number, "x"), f"{entry.revocation_date_utc:%Y-%m-%d %H:%M}Z", reason
        )
    console.print(table)


@crl_app.command("export")
def crl_export(
    ca: Annotated[str, typer.Argument(help="The CA.")],
    out: Annotated[Path, typer.Option(help="File to write.")],
    delta: Annotated[bool, typer.Option(help="The latest delta CRL instead.")] = False,
    pem: Annotated[bool, typer.Option("--pem/--der", help="PEM or DER.")] = True,
) -> None:
    """Write the latest CRL of a CA to a file."""
    with _home() as home:
        info = home.status.latest_crl(ca, delta=delta)
    data = info.der
    if pem:
        data = x509.load_der_x509_crl(info.der).public_bytes(Encoding.PEM)
    _write(out, data)
    console.print(f"wrote CRL {info.number} of {ca} to {out}")


@ocsp_app.command("refresh")
def ocsp_refresh() -> None:
    """Reissue due CRLs and pre-sign due OCSP responses for every CA (what `serve` does)."""
    with _home() as home:
        done = home.status.refresh()
    console.print(f"{done['crls']} CRLs issued, {done['ocsp_responses']} OCSP responses signed")


@ocsp_app.command("export")
def ocsp_export(
    out: Annotated[Path, typer.Option(help="Folder for the responses.")],
) -> None:
    """Export pre-signed OCSP responses as files at their RFC 5019 GET paths (for nginx)."""
    with _home() as home:
        count = home.status.export_ocsp(out)
    console.print(f"wrote {count} responses under {out}/<ca>/ocsp/")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: the home's).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Plain HTTP for CRLs, OCSP, CA certificates.")
    ] = None,
    https_port: Annotated[int | None, typer.Option(help="HTTPS for the API.")] = None,
    refresh_interval: Annotated[
        float, typer.Option(help="Seconds between CRL/OCSP refresh rounds.")
    ] = 60.0,
    tls_ca: Annotated[
        str | None, typer.Option(help="The CA that certifies the HTTPS listener.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run this home as a node: public PKI artifacts over HTTP, the API over HTTPS."""
    from trustbridge.node.server import ServeOptions
    from trustbridge.node.server import serve as run_node

    with _home() as home:
        config = home.config
        options = ServeOptions(
            host=host or config.host,
            http_port=http_port or config.http_port,
            https_port=https_port or config.https_port,
            refresh_interval=refresh_interval,
            tls_ca=tls_ca,
            log_level=log_level,
        )

        has_ca = any(c.state == "active" for c in home.cas()) or tls_ca is not None

        def ready() -> None:
            api = (
                f"https://{options.host}:{options.https_port} (API, /docs)"
                if has_ca
                else "no HTTPS API (this home has no CA to certify it)"
            )
            console.print(
                f"node {config.node_name} ready: http://{options.host}:{options.http_port} "
                f"(CRL, OCSP, CA certificates, status lists, trust lists), {api}",
                highlight=False,
            )

        run_node(home, options, on_ready=ready)


def _backup_passphrase(env_name: str | None, *, confirm: bool) -> bytes:
    if env_name:
        value = os.environ.get(env_name, "")
        if not value:
            raise InputError(f"environment variable {env_name} is empty or unset")
        return value.encode()
    if not sys.stdin.isatty():
        raise InputError(
            "no backup passphrase", hint="pass --passphrase-env NAME, or run in a terminal"
        )
    first = typer.prompt("backup passphrase", hide_input=True)
    if confirm and typer.prompt("again", hide_input=True) != first:
        raise InputError("the two passphrases differ")
    return str(first).encode()


@app.command()
def backup(
    out: Annotated[Path, typer.Option(help="The archive to write (must not exist).")],
    passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the archive's passphrase.")
    ] = None,
) -> None:
    """Write an encrypted archive of this home: database, keys, configuration."""
    from trustbridge.home.backup import backup_home

    secret = _backup_passphrase(passphrase_env, confirm=True)
    with _home() as home:
        info = backup_home(home, out, secret)
    rows = sum(info["rows"].values())
    console.print(
        f"backup of node {info['node']} -> {out}: {rows:,} rows, {len(info['files'])} files "
        "(AES-256-GCM, scrypt)"
    )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="The archive `trustbridge backup` wrote.")],
    passphrase_env: Annotated[
        str | None, typer.Option(help="Environment variable with the archive's passphrase.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="An empty database to restore into (default: SQLite in the home)."),
    ] = None,
) -> None:
    """Restore an archive into a new home (--home names it); it serves as the original did."""
    from trustbridge.home.backup import restore_home

    secret = _backup_passphrase(passphrase_env, confirm=False)
    info = restore_home(archive, state.home_path, secret, database_url=database_url)
    rows = sum(info["rows"].values())
    console.print(
        f"restored node {info['node']} (backup of {info['created_at']}) into "
        f"{state.home_path}: {rows:,} rows, {len(info['files'])} files"
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo-out"),
    port_base: Annotated[
        int | None,
        typer.Option(
            help="First loopback port of the nodes (HTTP at BASE+i, HTTPS at BASE+100+i); "
            "default 18080+i and 18443+i."
        ),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Leave the nodes up when the story is done and print their URLs (API and web "
            "UI); Ctrl-C stops them.",
        ),
    ] = False,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="Render OUT/report.html again from a finished run's manifest; start nothing.",
        ),
    ] = False,
) -> None:
    """Run the joint DE-JP demonstrator on node processes; write its artifacts, manifest.json
    and report.html (the story of DEMO.md, step by step, with the time each step took)."""
    from trustbridge.demo.scenario import render_again, run_demo

    if report_only:
        render_again(out, console=console)
        return
    run_demo(out, console=console, port_base=port_base, keep_running=keep_running)


def run() -> None:
    """Entry point: run the app, turning trustbridge errors into messages and exit codes."""
    try:
        # Without standalone mode click returns a typer.Exit's code instead of raising it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except TrustbridgeError as exc:
        # soft_wrap: paths and URLs in a message stay whole, to be copied.
        err.print(
            f"[bold red]error:[/] {escape(exc.diagnostics())}",
            highlight=False,
            soft_wrap=True,
            markup=True,
        )
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.exceptions.TyperException as exc:
        # Usage errors (missing option, unknown command): typer formats them.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc.format_message()}", highlight=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("TRUSTBRIDGE_DEBUG"):
            traceback.print_exc()
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
            "  hint: set TRUSTBRIDGE_DEBUG=1 to see the traceback, and report it",
            highlight=False,
            markup=True,
        )
        sys.exit(70)


if __name__ == "__main__":
    run()
