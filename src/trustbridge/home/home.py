"""A trustbridge home: configuration, database and keys of one node, and the operations on them.

The home is the application layer between the pure core (``pki``, ``trust``) and the adapters
that talk to people and machines (``cli``, later ``node``). Every operation that writes runs
in one database transaction: it either happens completely or not at all.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from trustbridge.clock import Clock, OffsetClock, SystemClock, ensure_utc
from trustbridge.errors import (
    ApprovalError,
    ConfigError,
    DuplicateError,
    InputError,
    KeyStoreError,
    NotFoundError,
    ProfileError,
    ReleaseError,
    StoreError,
    ValidationError,
)
from trustbridge.home.bridge import BridgeService
from trustbridge.home.config import FETCH_PROXY_SLUG, HomeConfig, SecretSource
from trustbridge.home.credentials import CredentialService
from trustbridge.home.exchange import ExchangeService
from trustbridge.home.log import LogService, certificate_entry
from trustbridge.home.provenance import ProvenanceService
from trustbridge.home.records import (
    AuditEvent,
    CaInfo,
    CertificateInfo,
    Issued,
    RequestInfo,
    local_principal,
)
from trustbridge.home.secrets import Prompt, resolve_secret
from trustbridge.home.status import StatusService
from trustbridge.home.trust import TrustStore
from trustbridge.ledger.entries import EntryKind
from trustbridge.pki import pkcs11
from trustbridge.pki.ca import (
    CaLimits,
    CertificateAuthority,
    Endpoints,
    NameConstraintsSpec,
    build_root_certificate,
    certificate_fingerprint,
    key_fingerprint,
)
from trustbridge.pki.csr import load_csr, load_csr_key
from trustbridge.pki.keys import (
    KeyType,
    generate_private_key,
    hash_for,
    load_private_key_file,
    write_private_key_file,
)
from trustbridge.pki.profiles import (
    MachineSubject,
    PersonSubject,
    Purpose,
    Role,
    Subject,
    SubjectKind,
    profile_for,
    roles_of,
    subject_from_dict,
    subject_kind_of,
)
from trustbridge.pki.release import (
    ApprovalRule,
    Decision,
    Principal,
    RequestState,
    VerifiedIdentity,
    check_enrolment_credential,
    check_officer_decision,
    enrolment_subject_organization,
    needs_officer,
    request_digest,
    sign_statement,
    verify_statement_signature,
)
from trustbridge.pki.signers import FileSigner, Signer
from trustbridge.store import tables as t
from trustbridge.store.db import Transactions, connect, migrate
from trustbridge.store.types import UtcDateTime
from trustbridge.trust.paths import HttpFetcher
from trustbridge.trust.schemes import TrustScheme
from trustbridge.trust.validation import RevocationMode, ValidationParams, validate_path

__all__ = [
    "DATABASE_FILE",
    "HOME_SQLITE",
    "EnrolmentProof",
    "Home",
    "KeySpec",
    "ProductionBatch",
    "local_principal",
]

DATABASE_FILE = "trustbridge.db"
#: ``database_url`` value for the SQLite file inside the home, whatever the environment says.
HOME_SQLITE = "sqlite"
ENROLMENT_STATEMENT = "trustbridge-enrolment/v1"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SERIAL_RETRIES = 3
_NO_CONSTRAINTS = NameConstraintsSpec()
# Statements of the issuance path, built once (SQLAlchemy caches their compiled form); used
# where the driver's parameter style has no prepared form below (see _Insert).
_STATUS_BY_FINGERPRINT = select(t.certificates.c.status).where(
    t.certificates.c.fingerprint == bindparam("fingerprint")
)
#: Placeholders of the DB-API parameter styles the prepared statements are written for.
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_STATUS_SQL = "SELECT status FROM certificates WHERE fingerprint = {0}"


@dataclass(frozen=True)
class _Insert:
    """An INSERT of fixed columns prepared for one database, run on the transaction's cursor.

    Issuing a certificate stores a handful of rows in one transaction, and SQLAlchemy's
    handling of each statement (cache lookup, execution context, result set-up) costs more
    than the database's execution of it. The values pass through the columns' own bind
    conversions for the dialect (JSON, UTC timestamps, binary), as SQLAlchemy converts them;
    driver errors are raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``), so
    callers handle them as before. Omitted columns get their server defaults, as with
    ``insert(table)``.
    """

    sql: str
    #: The row's values in column order.
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    #: The bind conversions: (position, conversion) of each column that has one.
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: Positions of the UTC time columns: their conversion depends on the instant alone.
    instants: frozenset[int] = frozenset()

    @classmethod
    def prepare(cls, table: Table, columns: Sequence[str], dialect: Dialect, mark: str) -> _Insert:
        # Names from the schema, quoted by the dialect; the values go in as parameters.
        quote = dialect.identifier_preparer.quote
        target = dialect.identifier_preparer.format_table(table)
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join(mark for _ in columns)
        processors = [
            table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
        ]
        getter = operator.itemgetter(*columns)
        return cls(
            sql=f"INSERT INTO {target} ({names}) VALUES ({marks})",  # noqa: S608
            values=getter if len(columns) > 1 else lambda row: (getter(row),),
            conversions=tuple((i, p) for i, p in enumerate(processors) if p is not None),
            instants=frozenset(
                i for i, c in enumerate(columns) if isinstance(table.c[c].type, UtcDateTime)
            ),
        )

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        params: list[Sequence[Any]] = []
        # Rows repeat their times (a request's submission and release, a batch's validity):
        # each instant is converted once per call (equal aware datetimes are one instant; a
        # naive one never equals an aware one, and its conversion refuses it).
        converted: dict[datetime, Any] = {}
        for row in rows:
            values = list(self.values(row))
            for position, convert in self.conversions:
                value = values[position]
                if position in self.instants and type(value) is datetime:
                    done = converted.get(value)
                    if done is None:
                        done = converted[value] = convert(value)
                    values[position] = done
                else:
                    values[position] = convert(value)
            params.append(values)
        _execute_raw(conn, self.sql, params)


def _execute_raw(conn: Connection, sql: str, params: Sequence[Sequence[Any]]) -> Any:
    """Run ``sql`` once per parameter row on ``conn``'s DB-API cursor; the cursor's result
    (for one row) as ``fetchone`` gives it."""
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        if len(params) == 1:
            cursor.execute(sql, params[0])
            return cursor.fetchone() if cursor.description is not None else None
        cursor.executemany(sql, params)
        return None
    except dbapi_error as exc:
        raise DBAPIError.instance(
            sql, params, exc, dbapi_error, dialect=conn.dialect, ismulti=len(params) > 1
        ) from exc
    finally:
        cursor.close()


#: Seconds to shift the clock of every home opened without an explicit clock (rehearsing
#: expiry and nonce lifetimes on running nodes without waiting; never set in production).
CLOCK_OFFSET_ENV = "TRUSTBRIDGE_CLOCK_OFFSET"


def configured_clock() -> Clock:
    """The system clock, shifted by ``$TRUSTBRIDGE_CLOCK_OFFSET`` seconds where that is set."""
    text = os.environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not text:
        return SystemClock()
    try:
        offset = float(text)
    except ValueError:
        raise ConfigError(f"{CLOCK_OFFSET_ENV}={text!r} is not a number of seconds") from None
    return OffsetClock(timedelta(seconds=offset))


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    if not slug:
        raise InputError(f"cannot derive a short name from {name!r}; pass one explicitly")
    return slug


@dataclass(frozen=True)
class KeySpec:
    """Where a new CA key is made: a passphrase-protected file, or a PKCS#11 token."""

    key_type: KeyType = KeyType.P256
    #: ``pkcs11:token=...;object=...?module-path=...``; None for a file key.
    pkcs11_uri: str | None = None
    secret: SecretSource = field(default_factory=SecretSource)


@dataclass(frozen=True)
class EnrolmentProof:
    """A request signed with an enrolment credential (an organization identity)."""

    certificate: x509.Certificate
    signature: bytes

    @classmethod
    def sign(cls, certificate: x509.Certificate, signer: Signer, digest: str) -> EnrolmentProof:
        """The credential holder's signature over the request with ``digest``."""
        return cls(certificate, sign_statement(enrolment_payload(digest), signer))


@dataclass(frozen=True)
class ProductionBatch:
    """Machine identities for a production batch, keys generated by the CA at manufacture."""

    ca: str
    manufacturer: str
    model: str
    country: str
    serial_numbers: tuple[str, ...]
    level: str
    key_type: KeyType = KeyType.P256
    #: e.g. ``urn:hayabusa:hps-200:{serial}``: each device's application URI.
    uri_template: str | None = None
    lifetime_days: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "serial_numbers", tuple(self.serial_numbers))
        if not self.serial_numbers:
            raise InputError("a production batch needs at least one serial number")
        if len(set(self.serial_numbers)) != len(self.serial_numbers):
            raise InputError("the batch repeats serial numbers")

    def template(self) -> dict[str, Any]:
        """What the batch request records as its subject (and its digest covers)."""
        return {
            "kind": "machine",
            "manufacturer": self.manufacturer,
            "model": self.model,
            "country": self.country,
            "serial_numbers": list(self.serial_numbers),
            "uri_template": self.uri_template,
        }

    def subjects(self) -> list[MachineSubject]:
        return [
            MachineSubject(
                manufacturer=self.manufacturer,
                model=self.model,
                serial_number=serial,
                country=self.country,
                application_uri=self.uri_template.format(serial=serial)
                if self.uri_template
                else None,
            )
            for serial in self.serial_numbers
        ]


def enrolment_payload(digest: str) -> bytes:
    """The bytes an enrolment credential signs for a request with ``digest``."""
    return f"{ENROLMENT_STATEMENT}\n{digest}".encode()


class Home:
    """One node's home folder: ``config.toml``, the database (SQLite here or PostgreSQL), keys."""

    def __init__(
        self,
        path: Path,
        config: HomeConfig,
        engine: Engine,
        *,
        clock: Clock,
        prompt: Prompt | None,
    ) -> None:
        self.path = path
        self.config = config
        self.engine = engine
        self._transactions = Transactions(engine)
        self.clock = clock
        self.prompt = prompt
        self._authorities: dict[str, CertificateAuthority] = {}
        self._verified: dict[str, tuple[datetime, VerifiedIdentity]] = {}
        self._levels: dict[str, tuple[str, str]] | None = None
        self._level_oids: dict[tuple[str, str], x509.ObjectIdentifier] = {}
        self._ca_ids: dict[str, int] = {}
        self._inserts: dict[tuple[str, tuple[str, ...]], _Insert] = {}
        self._fetch_proxy_password: bytes | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @staticmethod
    def database_url(path: Path, config: HomeConfig) -> str:
        """The database a home uses: its configured URL, or the SQLite file in the home."""
        if config.database_url:
            return config.database_url
        return f"sqlite:///{(path / DATABASE_FILE).resolve()}"

    @classmethod
    def init(
        cls,
        path: Path,
        *,
        node_name: str | None = None,
        host: str = "127.0.0.1",
        http_port: int = 8080,
        https_port: int = 8443,
        database_url: str | None = None,
        clock: Clock | None = None,
        prompt: Prompt | None = None,
    ) -> Home:
        """Create a home (folder, configuration, database schema) and open it.

        ``database_url`` names the database; without it ``TRUSTBRIDGE_DATABASE_URL`` does, and
        without that a SQLite file in the home (:data:`HOME_SQLITE` asks for that explicitly).
        The choice is recorded in the home's configuration, so later commands need no
        environment.
        """
        if (path / "config.toml").exists():
            raise DuplicateError(f"{path} is a trustbridge home already")
        if path.exists() and any(path.iterdir()):
            raise InputError(
                f"{path} exists and is not empty", hint="choose an empty or new folder"
            )
        if database_url is None:
            database_url = os.environ.get("TRUSTBRIDGE_DATABASE_URL") or None
        elif database_url == HOME_SQLITE:
            database_url = None
        config = HomeConfig(
            node_name=node_name or path.resolve().name.lstrip(".") or "node",
            host=host,
            http_port=http_port,
            https_port=https_port,
            database_url=database_url,
        )
        engine = connect(cls.database_url(path, config))
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            migrate(engine)
            (path / "keys").mkdir(mode=0o700, exist_ok=True)
            config.save(path)
        except BaseException:
            engine.dispose()
            if created:
                for child in sorted(path.rglob("*"), reverse=True):
                    with suppress(OSError):
                        child.unlink() if not child.is_dir() else child.rmdir()
                with suppress(OSError):
                    path.rmdir()
            raise
        return cls(path, config, engine, clock=clock or configured_clock(), prompt=prompt)

    @classmethod
    def open(cls, path: Path, *, clock: Clock | None = None, prompt: Prompt | None = None) -> Home:
        """Open an existing home, upgrading its database schema where needed."""
        config = HomeConfig.load(path)
        engine = connect(cls.database_url(path, config))
        migrate(engine)
        return cls(path, config, engine, clock=clock or configured_clock(), prompt=prompt)

    def close(self) -> None:
        self._transactions.close()
        self.engine.dispose()

    @cached_property
    def bridge(self) -> BridgeService:
        """Cross-certification of this home's CAs with other domains (bridge construction)."""
        return BridgeService(self)

    @cached_property
    def trust(self) -> TrustStore:
        """This home as a relying party: own roots, pinned LOTL signer, accepted lists."""
        return TrustStore(self)

    @cached_property
    def credentials(self) -> CredentialService:
        """This home as credential issuer (status lists) and holder (wallet)."""
        return CredentialService(self)

    @cached_property
    def exchange(self) -> ExchangeService:
        """First-contact sessions, contracts and secure messages with partner nodes."""
        return ExchangeService(self)

    @cached_property
    def log(self) -> LogService:
        """This node's transparency log, and the logs of others it follows."""
        return LogService(self)

    @cached_property
    def provenance(self) -> ProvenanceService:
        """Lifecycle statements of components: logged here, imported, verified."""
        return ProvenanceService(self)

    @cached_property
    def status(self) -> StatusService:
        """Revocation, CRLs, OCSP responses and service keys of this home's CAs."""
        return StatusService(self)

    def now(self) -> datetime:
        return ensure_utc(self.clock.now())

    def fetcher(self) -> HttpFetcher:
        """The HTTP fetcher for what certificates and credentials point at (CRLs, AIA and SIA
        bundles, status lists), restricted to the ``[fetch] allow`` list of ``config.toml``
        and going through its ``[fetch] proxy`` where one is set (as ``[fetch] proxy_user``
        with the password of the ``fetch-proxy`` secret, where that is set)."""
        user = self.config.fetch_proxy_user
        if user is None:
            return HttpFetcher(allow=self.config.fetch_allow, proxy=self.config.fetch_proxy)
        if self._fetch_proxy_password is None:
            self._fetch_proxy_password = resolve_secret(
                FETCH_PROXY_SLUG,
                self.config.secrets.get(FETCH_PROXY_SLUG),
                home=self.path,
                prompt=self.prompt,
                what=f"fetch proxy user {user!r}",
            )
        return HttpFetcher(
            allow=self.config.fetch_allow,
            proxy=self.config.fetch_proxy,
            proxy_auth=(user, self._fetch_proxy_password),
        )

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._transactions.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from None

    def _insert(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (mappings with the same keys) into ``table``, in ``conn``'s
        transaction, as a statement prepared once for this database (:class:`_Insert`)."""
        if not rows:
            return
        columns = tuple(rows[0])
        prepared = self._inserts.get((table.name, columns))
        if prepared is None:
            mark = _MARKS.get(conn.dialect.paramstyle)
            if mark is None:
                conn.execute(insert(table), list(rows))
                return
            prepared = _Insert.prepare(table, columns, conn.dialect, mark)
            self._inserts[(table.name, columns)] = prepared
        prepared.run(conn, rows)

    def _certificate_status(self, conn: Connection, fingerprint: str) -> str | None:
        """The status of the certificate with ``fingerprint``; None if this home never
        issued it."""
        mark = _MARKS.get(conn.dialect.paramstyle)
        if mark is None:
            found = conn.execute(_STATUS_BY_FINGERPRINT, {"fingerprint": fingerprint}).first()
        else:
            found = _execute_raw(conn, _STATUS_SQL.format(mark), [(fingerprint,)])
        return None if found is None else str(found[0])

    def _audit_row(
        self, actor: Principal, action: str, object_type: str, object_id: str, **details: Any
    ) -> dict[str, Any]:
        return {
            "at": self.now(),
            "actor": str(actor),
            "actor_display": actor.display,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
        }

    def _audit(
        self,
        conn: Connection,
        actor: Principal,
        action: str,
        object_type: str,
        object_id: str,
        **details: Any,
    ) -> None:
        self._insert(
            conn,
            t.audit_events,
            [self._audit_row(actor, action, object_type, object_id, **details)],
        )

    # -- schemes -------------------------------------------------------------------------------

    def create_scheme(self, scheme: TrustScheme, *, actor: Principal | None = None) -> TrustScheme:
        """Record a trust scheme and its levels."""
        actor = actor or local_principal()
        try:
            with self._tx() as conn:
                scheme_id = conn.execute(
                    insert(t.schemes).values(
                        code=scheme.code, name=scheme.name, created_at=self.now()
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(
                    insert(t.levels),
                    [
                        {
                            "scheme_id": scheme_id,
                            "name": lv.name,
                            "oid": lv.oid.dotted_string,
                            "rank": lv.rank,
                        }
                        for lv in scheme.levels
                    ],
                )
                self._audit(
                    conn,
                    actor,
                    "scheme.create",
                    "scheme",
                    scheme.code,
                    levels={lv.name: lv.oid.dotted_string for lv in scheme.levels},
                )
        except IntegrityError:
            raise DuplicateError(
                f"scheme {scheme.code} or one of its level OIDs exists already in this home"
            ) from None
        self._levels = None
        return scheme

    def schemes(self) -> list[TrustScheme]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.schemes).order_by(t.schemes.c.code)).all()
            levels = conn.execute(select(t.levels).order_by(t.levels.c.rank)).all()
        result = []
        for row in rows:
            own = [
                (lv.name, x509.ObjectIdentifier(lv.oid)) for lv in levels if lv.scheme_id == row.id
            ]
            result.append(TrustScheme.create(row.code, row.name, own))
        return result

    def scheme(self, code: str) -> TrustScheme:
        for scheme in self.schemes():
            if scheme.code == code:
                return scheme
        raise NotFoundError(f"no scheme {code!r} in this home", hint="trustbridge scheme list")

    def _level_names(self) -> dict[str, tuple[str, str]]:
        """level OID -> (scheme code, level name)."""
        if self._levels is None:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(t.levels.c.oid, t.levels.c.name, t.schemes.c.code).join(t.schemes)
                ).all()
            self._levels = {r.oid: (r.code, r.name) for r in rows}
        return self._levels

    def level_name(self, oid: str) -> str:
        return self._level_names().get(oid, ("?", oid))[1]

    def _scheme_id(self, conn: Connection, code: str) -> int:
        row = conn.execute(select(t.schemes.c.id).where(t.schemes.c.code == code)).first()
        if row is None:
            raise NotFoundError(f"no scheme {code!r} in this home", hint="trustbridge scheme list")
        return int(row.id)

    # -- keys ----------------------------------------------------------------------------------

    def _secret(self, slug: str) -> bytes:
        return resolve_secret(
            slug, self.config.secrets.get(slug), home=self.path, prompt=self.prompt
        )

    def _new_key(self, slug: str, spec: KeySpec) -> tuple[Signer, str, str]:
        """Create a CA key; returns the signer, the key store kind and its reference."""
        if spec.pkcs11_uri:
            ref = pkcs11.Pkcs11KeyRef.parse(spec.pkcs11_uri)
            pin = resolve_secret(slug, spec.secret, home=self.path, prompt=self.prompt)
            signer = pkcs11.generate_key(ref, spec.key_type, pin.decode())
            return signer, "pkcs11", ref.uri()
        passphrase = resolve_secret(slug, spec.secret, home=self.path, prompt=self.prompt)
        key = generate_private_key(spec.key_type)
        rel = f"keys/{slug}.key.pem"
        write_private_key_file(self.path / rel, key, passphrase)
        return FileSigner(key, rel), "file", rel

    def _remember_secret(self, slug: str, spec: KeySpec) -> None:
        if spec.secret.env or spec.secret.file:
            self.config = self.config.with_secret(slug, spec.secret)
            self.config.save(self.path)

    def _discard_key(self, store: str, ref: str) -> None:
        if store == "file":
            with suppress(OSError):
                (self.path / ref).unlink()

    def _load_signer(self, slug: str, store: str, ref: str) -> Signer:
        if store == "pkcs11":
            return pkcs11.open_signer(pkcs11.Pkcs11KeyRef.parse(ref), self._secret(slug).decode())
        key = load_private_key_file(self.path / ref, self._secret(slug))
        return FileSigner(key, ref)

    # -- certificate authorities ----------------------------------------------------------------

    def _check_slug(self, slug: str) -> str:
        if not _SLUG.match(slug):
            raise InputError(f"CA short name {slug!r} must be lowercase letters, digits, hyphens")
        with self.engine.connect() as conn:
            if conn.execute(select(t.authorities.c.id).where(t.authorities.c.slug == slug)).first():
                raise DuplicateError(f"a CA named {slug!r} exists already in this home")
        return slug

    def _ca_name(self, name: str, country: str | None, organization: str | None) -> x509.Name:
        attrs = []
        if country:
            attrs.append(x509.NameAttribute(x509.NameOID.COUNTRY_NAME, country))
        if organization:
            attrs.append(x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization))
        attrs.append(x509.NameAttribute(x509.NameOID.COMMON_NAME, name))
        try:
            return x509.Name(attrs)
        except ValueError as exc:
            raise InputError(f"CA name: {exc}") from None

    def _levels_for(
        self, scheme: TrustScheme, names: Sequence[str] | None
    ) -> tuple[x509.ObjectIdentifier, ...]:
        if not names:
            return tuple(lv.oid for lv in scheme.levels)
        return tuple(scheme.level(n).oid for n in names)

    def create_root_ca(
        self,
        *,
        scheme: str,
        name: str,
        slug: str | None = None,
        country: str | None = None,
        organization: str | None = None,
        key: KeySpec = KeySpec(KeyType.P384),
        lifetime: timedelta = timedelta(days=20 * 365),
        path_length: int | None = 1,
        actor: Principal | None = None,
    ) -> CaInfo:
        """Create a self-signed root CA of ``scheme`` asserting all its levels."""
        actor = actor or local_principal()
        scheme_obj = self.scheme(scheme)
        slug = self._check_slug(slug or slugify(name))
        # A root delegates every level of its scheme and every role.
        limits = CaLimits(
            levels=self._levels_for(scheme_obj, None),
            roles=frozenset(Role),
            path_length=path_length,
        )
        subject = self._ca_name(name, country, organization)
        signer, store, ref = self._new_key(slug, key)
        try:
            certificate = build_root_certificate(
                signer=signer,
                name=subject,
                limits=limits,
                at=self.now(),
                lifetime=lifetime,
                repository_url=Endpoints.for_ca(self.config.base_url, slug).repository_url,
            )
            with self._tx() as conn:
                self._insert_ca(
                    conn,
                    slug=slug,
                    name=name,
                    scheme=scheme,
                    parent_id=None,
                    is_root=True,
                    certificate=certificate,
                    csr=None,
                    chain_pem=None,
                    store=store,
                    ref=ref,
                    key_type=key.key_type,
                    limits=limits,
                    constraints=NameConstraintsSpec(),
                )
                self._audit(
                    conn,
                    actor,
                    "ca.create-root",
                    "ca",
                    slug,
                    key_store=store,
                    subject=subject.rfc4514_string(),
                )
        except BaseException:
            self._discard_key(store, ref)
            raise
        self._remember_secret(slug, key)
        return self.ca(slug)

    def _insert_ca(
        self,
        conn: Connection,
        *,
        slug: str,
        name: str,
        scheme: str,
        parent_id: int | None,
        is_root: bool,
        certificate: x509.Certificate | None,
        csr: x509.CertificateSigningRequest | None,
        chain_pem: str | None,
        store: str,
        ref: str,
        key_type: KeyType,
        limits: CaLimits,
        constraints: NameConstraintsSpec,
    ) -> int:
        return int(
            conn.execute(
                insert(t.authorities).values(
                    slug=slug,
                    name=name,
                    scheme_id=self._scheme_id(conn, scheme),
                    parent_id=parent_id,
                    is_root=is_root,
                    state="active" if certificate is not None else "awaiting-certificate",
                    certificate_der=certificate.public_bytes(Encoding.DER) if certificate else None,
                    csr_der=csr.public_bytes(Encoding.DER) if csr else None,
                    chain_pem=chain_pem,
                    key_store=store,
                    key_ref=ref,
                    key_type=key_type.value,
                    kinds=sorted(k.value for k in limits.kinds),
                    level_oids=[o.dotted_string for o in limits.levels],
                    roles=sorted(r.value for r in limits.roles),
                    path_length=limits.path_length,
                    name_constraints=constraints.__dict__
                    and {k: list(v) for k, v in constraints.__dict__.items()},
                    base_url=self.config.base_url,
                    created_at=self.now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )

    def create_issuing_ca(
        self,
        *,
        parent: str,
        name: str,
        kinds: Sequence[SubjectKind],
        levels: Sequence[str] | None = None,
        roles: Sequence[Role] = (),
        slug: str | None = None,
        country: str | None = None,
        organization: str | None = None,
        key: KeySpec = KeySpec(KeyType.P256),
        lifetime: timedelta = timedelta(days=8 * 365),
        path_length: int | None = 0,
        name_constraints: NameConstraintsSpec = _NO_CONSTRAINTS,
        actor: Principal | None = None,
    ) -> CaInfo:
        """Create a subordinate CA below ``parent`` (a CA of this home)."""
        actor = actor or local_principal()
        parent_info = self.ca(parent)
        parent_ca = self.authority(parent)
        scheme = self.scheme(parent_info.scheme)
        slug = self._check_slug(slug or slugify(name))
        limits = CaLimits(
            levels=self._levels_for(scheme, levels),
            kinds=frozenset(kinds),
            roles=frozenset(roles),
            path_length=path_length,
        )
        subject = self._ca_name(name, country, organization)
        signer, store, ref = self._new_key(slug, key)
        try:
            certificate = parent_ca.certify_ca(
                subject_name=subject,
                public_key=signer.public_key,
                limits=limits,
                at=self.now(),
                lifetime=lifetime,
                name_constraints=name_constraints,
            )
            with self._tx() as conn:
                parent_id = self._ca_id(conn, parent)
                self._insert_ca(
                    conn,
                    slug=slug,
                    name=name,
                    scheme=scheme.code,
                    parent_id=parent_id,
                    is_root=False,
                    certificate=certificate,
                    csr=None,
                    chain_pem=None,
                    store=store,
                    ref=ref,
                    key_type=key.key_type,
                    limits=limits,
                    constraints=name_constraints,
                )
                self._record_ca_certificate(conn, parent_id, certificate, actor)
                self._audit(
                    conn,
                    actor,
                    "ca.create-issuing",
                    "ca",
                    slug,
                    parent=parent,
                    kinds=sorted(limits.kinds),
                    key_store=store,
                )
        except BaseException:
            self._discard_key(store, ref)
            raise
        self._remember_secret(slug, key)
        return self.ca(slug)

    def _record_ca_certificate(
        self, conn: Connection, parent_id: int, certificate: x509.Certificate, actor: Principal
    ) -> None:
        """Keep a CA certificate this home issued among its certificates (for revocation)."""
        conn.execute(
            insert(t.certificates).values(
                ca_id=parent_id,
                serial=format(certificate.serial_number, "x"),
                request_id=None,
                kind="ca",
                purpose="ca",
                holder=certificate.subject.rfc4514_string()[:200],
                level_oid="",
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                key_fingerprint=key_fingerprint(certificate.public_key()),
                fingerprint=certificate_fingerprint(certificate),
                der=certificate.public_bytes(Encoding.DER),
                key_origin="holder",
                issued_at=self.now(),
                issued_by=str(actor),
            )
        )
        self.log.append(
            EntryKind.CERTIFICATE_ISSUED,
            certificate_entry(certificate, ca=self._ca_slug_of(conn, parent_id), kind="ca"),
            subject=format(certificate.serial_number, "x"),
            conn=conn,
        )

    def request_subordinate_ca(
        self,
        *,
        scheme: str,
        name: str,
        slug: str | None = None,
        country: str | None = None,
        organization: str | None = None,
        key: KeySpec = KeySpec(KeyType.P256),
        actor: Principal | None = None,
    ) -> tuple[CaInfo, x509.CertificateSigningRequest]:
        """Create the key of a CA whose parent lives in another home; returns its CSR."""
        actor = actor or local_principal()
        self.scheme(scheme)
        slug = self._check_slug(slug or slugify(name))
        subject = self._ca_name(name, country, organization)
        signer, store, ref = self._new_key(slug, key)
        try:
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(subject)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(signer.private_key, hash_for(signer.key_type))
            )
            placeholder = CaLimits(levels=(x509.ObjectIdentifier("2.5.29.32.0"),))
            with self._tx() as conn:
                self._insert_ca(
                    conn,
                    slug=slug,
                    name=name,
                    scheme=scheme,
                    parent_id=None,
                    is_root=False,
                    certificate=None,
                    csr=csr,
                    chain_pem=None,
                    store=store,
                    ref=ref,
                    key_type=key.key_type,
                    limits=placeholder,
                    constraints=NameConstraintsSpec(),
                )
                self._audit(conn, actor, "ca.request", "ca", slug, subject=subject.rfc4514_string())
        except BaseException:
            self._discard_key(store, ref)
            raise
        self._remember_secret(slug, key)
        return self.ca(slug), csr

    def certify_subordinate_ca(
        self,
        *,
        parent: str,
        csr_data: bytes,
        kinds: Sequence[SubjectKind],
        levels: Sequence[str] | None = None,
        roles: Sequence[Role] = (),
        lifetime: timedelta = timedelta(days=8 * 365),
        path_length: int | None = 0,
        name_constraints: NameConstraintsSpec = _NO_CONSTRAINTS,
        source: str = "CSR",
        actor: Principal | None = None,
    ) -> x509.Certificate:
        """Certify a CA of another home from its CSR; records the certificate here."""
        actor = actor or local_principal()
        csr = load_csr(csr_data, source=source)
        parent_info = self.ca(parent)
        parent_ca = self.authority(parent)
        scheme = self.scheme(parent_info.scheme)
        limits = CaLimits(
            levels=self._levels_for(scheme, levels),
            kinds=frozenset(kinds),
            roles=frozenset(roles),
            path_length=path_length,
        )
        certificate = parent_ca.certify_ca(
            subject_name=csr.subject,
            public_key=csr.public_key(),
            limits=limits,
            at=self.now(),
            lifetime=lifetime,
            name_constraints=name_constraints,
        )
        with self._tx() as conn:
            self._record_ca_certificate(conn, self._ca_id(conn, parent), certificate, actor)
            self._audit(
                conn,
                actor,
                "ca.certify",
                "ca",
                parent,
                subject=csr.subject.rfc4514_string(),
                kinds=sorted(limits.kinds),
            )
        return certificate

    def install_ca_certificate(
        self,
        slug: str,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        *,
        actor: Principal | None = None,
    ) -> CaInfo:
        """Install the certificate a parent CA in another home issued for CA ``slug``."""
        actor = actor or local_principal()
        info = self.ca(slug)
        if info.state != "awaiting-certificate":
            raise ReleaseError(f"CA {slug} is {info.state}; it is not waiting for a certificate")
        signer = self._load_signer(slug, info.key_store, info.key_ref)
        if key_fingerprint(certificate.public_key()) != key_fingerprint(signer.public_key):
            raise InputError(f"the certificate is not for CA {slug}'s key")
        limits = CaLimits.from_certificate(certificate)
        if not chain:
            raise InputError("the parent's chain up to its root is needed")
        try:
            certificate.verify_directly_issued_by(chain[0])
        except (ValueError, TypeError, Exception) as exc:
            raise ValidationError(
                f"the certificate is not issued by the first chain certificate: {exc}"
            ) from None
        validate_path(
            certificate,
            intermediates=chain[:-1],
            anchors=[chain[-1]],
            params=ValidationParams(
                at=self.now(),
                require_explicit_policy=False,
                revocation=RevocationMode.UNSAFE_SOFT_FAIL,
            ),
        )
        scheme = self.scheme(info.scheme)
        known = {lv.oid for lv in scheme.levels}
        unknown = [o.dotted_string for o in limits.levels if o not in known]
        if unknown:
            raise InputError(
                f"the certificate asserts policies unknown to scheme {scheme.code}: {unknown}"
            )
        chain_pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)
        with self._tx() as conn:
            conn.execute(
                update(t.authorities)
                .where(t.authorities.c.slug == slug)
                .values(
                    state="active",
                    certificate_der=certificate.public_bytes(Encoding.DER),
                    chain_pem=chain_pem,
                    kinds=sorted(k.value for k in limits.kinds),
                    level_oids=[o.dotted_string for o in limits.levels],
                    roles=sorted(r.value for r in limits.roles),
                    path_length=limits.path_length,
                )
            )
            self._audit(
                conn, actor, "ca.install", "ca", slug, issuer=certificate.issuer.rfc4514_string()
            )
        return self.ca(slug)

    def _ca_slug_of(self, conn: Connection, ca_id: int) -> str:
        return str(
            conn.execute(
                select(t.authorities.c.slug).where(t.authorities.c.id == ca_id)
            ).scalar_one()
        )

    def _ca_id(self, conn: Connection, slug: str) -> int:
        row = conn.execute(select(t.authorities.c.id).where(t.authorities.c.slug == slug)).first()
        if row is None:
            raise NotFoundError(f"no CA {slug!r} in this home", hint="trustbridge ca list")
        return int(row.id)

    def _ca_info(self, row: Any, schemes: dict[int, str], slugs: dict[int, str]) -> CaInfo:
        names = self._level_names()
        return CaInfo(
            slug=row.slug,
            name=row.name,
            scheme=schemes[row.scheme_id],
            is_root=row.is_root,
            state=row.state,
            certificate=x509.load_der_x509_certificate(row.certificate_der)
            if row.certificate_der
            else None,
            key_store=row.key_store,
            key_ref=row.key_ref,
            key_type=row.key_type,
            kinds=tuple(row.kinds),
            levels=tuple(names.get(o, ("?", o))[1] for o in row.level_oids),
            roles=tuple(row.roles),
            path_length=row.path_length,
            parent=slugs.get(row.parent_id) if row.parent_id else None,
        )

    def cas(self) -> list[CaInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.authorities).order_by(t.authorities.c.id)).all()
            schemes = {r.id: r.code for r in conn.execute(select(t.schemes.c.id, t.schemes.c.code))}
        slugs = {r.id: r.slug for r in rows}
        return [self._ca_info(r, schemes, slugs) for r in rows]

    def ca(self, slug: str) -> CaInfo:
        for info in self.cas():
            if info.slug == slug:
                return info
        raise NotFoundError(f"no CA {slug!r} in this home", hint="trustbridge ca list")

    def chain_of(self, slug: str) -> tuple[x509.Certificate, ...]:
        """The CA's certificate and those above it, up to and including the root."""
        chain: list[x509.Certificate] = []
        with self.engine.connect() as conn:
            current: Any = conn.execute(
                select(t.authorities).where(t.authorities.c.slug == slug)
            ).first()
            while current is not None:
                if current.certificate_der is None:
                    raise ReleaseError(f"CA {current.slug} has no certificate yet")
                chain.append(x509.load_der_x509_certificate(current.certificate_der))
                if current.chain_pem:
                    chain += x509.load_pem_x509_certificates(current.chain_pem.encode())
                    break
                if current.parent_id is None:
                    break
                current = conn.execute(
                    select(t.authorities).where(t.authorities.c.id == current.parent_id)
                ).first()
        return tuple(chain)

    def anchors(self) -> list[x509.Certificate]:
        """The roots this home's own CAs chain to."""
        roots: dict[str, x509.Certificate] = {}
        for info in self.cas():
            if info.state != "active":
                continue
            top = self.chain_of(info.slug)[-1]
            roots[certificate_fingerprint(top)] = top
        return list(roots.values())

    def authority(self, slug: str) -> CertificateAuthority:
        """The signing CA ``slug``, its key loaded (cached for the life of this object)."""
        cached = self._authorities.get(slug)
        if cached is not None:
            return cached
        info = self.ca(slug)
        if info.state != "active" or info.certificate is None:
            raise ReleaseError(
                f"CA {slug} has no certificate yet",
                hint=f"install the certificate from its parent: trustbridge ca install {slug} ...",
            )
        signer = self._load_signer(slug, info.key_store, info.key_ref)
        if key_fingerprint(signer.public_key) != key_fingerprint(info.certificate.public_key()):
            raise KeyStoreError(f"the key of CA {slug} does not match its certificate")
        with self.engine.connect() as conn:
            base, ca_id = conn.execute(
                select(t.authorities.c.base_url, t.authorities.c.id).where(
                    t.authorities.c.slug == slug
                )
            ).one()
        authority = CertificateAuthority(
            certificate=info.certificate,
            signer=signer,
            limits=CaLimits.from_certificate(info.certificate),
            endpoints=Endpoints.for_ca(base, slug),
            chain=self.chain_of(slug)[1:],
        )
        self._authorities[slug] = authority
        self._ca_ids[slug] = int(ca_id)
        return authority

    # -- identity verification (officers, requesters, enrolment credentials) -------------------

    def verify_identity(
        self,
        certificate: x509.Certificate,
        at: datetime | None = None,
        *,
        conn: Connection | None = None,
    ) -> VerifiedIdentity:
        """Validate an identity this home issued: path to its anchors, validity, status.

        The path validation result is cached for five minutes per certificate; the status in
        the database is checked on every call (in ``conn``'s transaction where given), so a
        revocation takes effect at once.
        """
        return self._verify_identity(
            certificate, certificate_fingerprint(certificate), at or self.now(), conn=conn
        )

    def _verify_identity(
        self,
        certificate: x509.Certificate,
        fingerprint: str,
        at: datetime,
        *,
        conn: Connection | None = None,
    ) -> VerifiedIdentity:
        """:meth:`verify_identity` of ``certificate``, whose fingerprint the caller computed."""
        if conn is None:
            with self.engine.connect() as own:
                status = self._certificate_status(own, fingerprint)
        else:
            status = self._certificate_status(conn, fingerprint)
        if status is None:
            raise ValidationError(
                f"{certificate.subject.rfc4514_string()} is not an identity issued by this home",
                hint="approvals and enrolments need an identity of one of this home's CAs",
            )
        if status != "good":
            raise ValidationError(
                f"the identity {certificate.subject.rfc4514_string()} is {status}"
            )
        cached = self._verified.get(fingerprint)
        if cached is not None and cached[0] > at and at < certificate.not_valid_after_utc:
            return cached[1]
        intermediates = [
            c for info in self.cas() if info.certificate for c in self.chain_of(info.slug)
        ]
        validate_path(
            certificate,
            intermediates=intermediates,
            anchors=self.anchors(),
            params=ValidationParams(
                at=at, require_explicit_policy=True, revocation=RevocationMode.UNSAFE_SOFT_FAIL
            ),
        )
        identity = VerifiedIdentity(
            certificate, roles_of(certificate), subject_kind_of(certificate)
        )
        self._verified[fingerprint] = (at + timedelta(minutes=5), identity)
        return identity

    def verify(self, certificate: x509.Certificate, at: datetime) -> VerifiedIdentity:
        """:class:`IdentityVerifier` protocol."""
        return self.verify_identity(certificate, at)

    # -- requests ------------------------------------------------------------------------------

    def submit_request(
        self,
        *,
        ca: str,
        subject: Subject,
        level: str,
        csr_data: bytes | None = None,
        csr_source: str = "CSR",
        public_key: CertificatePublicKeyTypes | None = None,
        generate_key: KeyType | None = None,
        purpose: Purpose = Purpose.IDENTITY,
        lifetime_days: int | None = None,
        requester: Principal | None = None,
        enrolment: EnrolmentProof | None = None,
        enrolment_token: str | None = None,
        renewal_of: int | None = None,
        current_identity: x509.Certificate | None = None,
        enrolment_channel: x509.Certificate | None = None,
    ) -> RequestInfo | Issued:
        """Record an issuance request; release it at once where an approval rule applies.

        ``enrolment_channel``: an enrolment credential whose key the caller proved in the
        channel (a TLS client certificate at EST); it releases like a signed ``enrolment``.

        ``current_identity``: the caller proved possession of this certificate's key (EST
        re-enrolment over TLS); it releases the renewal or rekey of exactly that certificate.

        Returns the pending request, or what was issued when a rule released it.
        """
        authority = self.authority(ca)
        level_oid = self._level_oid(ca, level)
        profile = profile_for(subject.kind, purpose)
        key_origin = "holder"
        public_key_der: bytes | None = None
        csr_der: bytes | None = None
        if csr_data is not None:
            csr, public_key = load_csr_key(csr_data, source=csr_source)
            csr_der = csr.public_bytes(Encoding.DER)
        if public_key is not None:
            if generate_key is not None:
                raise InputError("give either a CSR or --generate-key, not both")
            key_type = KeyType.of(public_key)
            public_key_der = public_key.public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo
            )
        elif generate_key is not None:
            if not profile.ca_generated_key:
                raise ProfileError(
                    f"the CA may not generate keys for {subject.kind} identities",
                    hint="keys of people, organizations and software are generated by their "
                    "holders: send a CSR (or generate the key in a PKCS#11 token)",
                )
            key_type = generate_key
            key_origin = "ca-generated"
        else:
            raise InputError("a request needs the holder's CSR (or, for machines, --generate-key)")
        now = self.now()
        authority.check_usable(now)
        authority.check_request(
            subject=subject, level=level_oid, key_type=key_type, purpose=purpose
        )
        if lifetime_days is not None and lifetime_days <= 0:
            raise InputError(f"lifetime of {lifetime_days} days must be positive")
        subject_data = subject.to_dict()
        digest = request_digest(
            ca=ca,
            kind=subject.kind,
            purpose=purpose.value,
            level=level_oid.dotted_string,
            subject=subject_data,
            public_key_der=public_key_der,
            lifetime_days=lifetime_days,
        )
        rule: ApprovalRule | None = None
        credential: VerifiedIdentity | None = None
        # Identities whose status is read again in the issuing transaction, with their
        # fingerprints.
        releasing: list[tuple[x509.Certificate, str]] = []
        if enrolment is not None:
            rule = ApprovalRule.ENROLMENT_CREDENTIAL
            releasing.append(
                (enrolment.certificate, certificate_fingerprint(enrolment.certificate))
            )
            # The key of a credential verified before (the same certificate: the same
            # fingerprint), decoded then; its path and status are checked again below.
            known = self._verified.get(releasing[-1][1])
            verify_statement_signature(
                enrolment.certificate,
                enrolment_payload(digest),
                enrolment.signature,
                public_key=known[1].public_key if known is not None else None,
            )
            credential = self._verified_credential(*releasing[-1], subject, now)
            requester = credential.principal
        elif enrolment_channel is not None:
            rule = ApprovalRule.ENROLMENT_CREDENTIAL
            releasing.append((enrolment_channel, certificate_fingerprint(enrolment_channel)))
            credential = self._verified_credential(*releasing[-1], subject, now)
            requester = credential.principal
        elif enrolment_token is not None:
            rule = ApprovalRule.ENROLMENT_TOKEN
        elif current_identity is not None:
            rule = ApprovalRule.CURRENT_IDENTITY
            releasing.append((current_identity, certificate_fingerprint(current_identity)))
            renewed = self.certificate_by_fingerprint(releasing[-1][1])
            if renewal_of is None or renewed.id != renewal_of:
                raise ApprovalError(
                    "an identity can only re-enrol itself",
                    hint="the certificate presented must be the one being renewed",
                )
            if needs_officer(subject.kind):
                raise ApprovalError(f"{subject.kind} identities are renewed with an officer")
            requester = Principal(
                "identity", renewed.fingerprint, f"{renewed.holder} (current identity)"
            )
        requester = requester or local_principal()
        request_id = str(uuid.uuid4())
        fingerprint = (
            hashlib.sha256(public_key_der).hexdigest() if public_key_der is not None else None
        )
        row: dict[str, Any] = {
            "id": request_id,
            "ca_id": self._ca_ids[ca],
            "kind": subject.kind.value,
            "purpose": purpose.value,
            "level_oid": level_oid.dotted_string,
            "subject": subject_data,
            "csr_der": csr_der,
            "public_key_der": public_key_der,
            "key_fingerprint": fingerprint,
            "key_origin": key_origin,
            "key_type": key_type.value,
            "lifetime_days": lifetime_days,
            "batch_size": 1,
            "digest": digest,
            "state": RequestState.PENDING.value,
            "requested_by": str(requester),
            "requested_by_display": requester.display,
            "requested_at": now,
            "decided_by": None,
            "decided_by_display": None,
            "decided_at": None,
            "decision_rule": None,
            "decision_reason": None,
            "renewal_of": renewal_of,
        }
        submitted = self._audit_row(
            requester,
            "request.submit",
            "request",
            request_id,
            kind=subject.kind.value,
            ca=ca,
            holder=subject.display_name,
        )
        for attempt in range(_SERIAL_RETRIES):
            try:
                with self._tx() as conn:
                    if rule is None:
                        self._insert(conn, t.requests, [row])
                        self._insert(conn, t.audit_events, [submitted])
                        return self._request_from_row(row, ca)
                    rule_principal = Principal("rule", rule.value, f"approval rule {rule.value}")
                    released = {
                        **row,
                        "state": RequestState.ISSUED.value,
                        "decided_by": str(rule_principal),
                        "decided_by_display": rule_principal.display,
                        "decided_at": now,
                        "decision_rule": rule.value,
                        "decision_reason": f"released by rule {rule.value}",
                    }
                    # The first write: what is read below is read inside the writing
                    # transaction (SQLite begins it at the first write).
                    self._insert(conn, t.requests, [released])
                    for identity, identity_fingerprint in releasing:
                        # The releasing identity's status, read in the issuing transaction.
                        self._verify_identity(identity, identity_fingerprint, now, conn=conn)
                    if enrolment_token is not None:
                        # The token is consumed in the same transaction as the issuance.
                        self._consume_token(conn, enrolment_token, subject, request_id, now)
                    return self._issue(
                        conn,
                        row=released,
                        ca=ca,
                        subject=subject,
                        public_key=public_key,
                        decided_by=rule_principal,
                        rule=rule,
                        audit=[submitted],
                    )
            except IntegrityError as exc:
                problem = str(exc.orig).lower()
                if "serial" in problem and attempt + 1 < _SERIAL_RETRIES:
                    continue
                if "key_fingerprint" in problem or "uq_requests_pending_key" in problem:
                    raise self._duplicate(ca, fingerprint) from None
                raise DuplicateError(f"request could not be stored: {_constraint(exc)}") from None
        raise StoreError("could not store the request")  # pragma: no cover

    def _verified_credential(
        self, certificate: x509.Certificate, fingerprint: str, subject: Subject, at: datetime
    ) -> VerifiedIdentity:
        """An enrolment credential (with its ``fingerprint``) whose path (cached) and fit for
        ``subject`` are checked.

        Its status is checked again inside the issuing transaction.
        """
        cached = self._verified.get(fingerprint)
        if cached is not None and cached[0] > at and at < certificate.not_valid_after_utc:
            credential = cached[1]
        else:
            credential = self._verify_identity(certificate, fingerprint, at)
        check_enrolment_credential(subject, credential)
        return credential

    def _duplicate(self, ca: str, fingerprint: str | None) -> DuplicateError:
        with self.engine.connect() as conn:
            existing = conn.execute(
                select(t.requests.c.id).where(
                    and_(
                        t.requests.c.ca_id == self._ca_ids[ca],
                        t.requests.c.key_fingerprint == fingerprint,
                        t.requests.c.state == RequestState.PENDING.value,
                    )
                )
            ).scalar()
        return DuplicateError(
            f"request {existing} for the same key is pending already at this CA",
            hint=f"approve or reject it first: trustbridge request show {existing}",
        )

    def request_digest_for(
        self,
        *,
        ca: str,
        subject: Subject,
        level: str,
        csr_data: bytes | None = None,
        public_key: CertificatePublicKeyTypes | None = None,
        purpose: Purpose = Purpose.IDENTITY,
        lifetime_days: int | None = None,
    ) -> str:
        """The digest a request will carry: what an enrolment credential signs beforehand."""
        if csr_data is not None:
            public_key = load_csr(csr_data, source="CSR").public_key()
        public_key_der = (
            public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            if public_key is not None
            else None
        )
        return request_digest(
            ca=ca,
            kind=subject.kind,
            purpose=purpose.value,
            level=self._level_oid(ca, level).dotted_string,
            subject=subject.to_dict(),
            public_key_der=public_key_der,
            lifetime_days=lifetime_days,
        )

    def batch_digest(self, batch: ProductionBatch) -> str:
        """The digest of a production batch: what the manufacturer's credential signs."""
        return request_digest(
            ca=batch.ca,
            kind=SubjectKind.MACHINE,
            purpose=Purpose.IDENTITY.value,
            level=self._level_oid(batch.ca, batch.level).dotted_string,
            subject=batch.template(),
            public_key_der=None,
            lifetime_days=batch.lifetime_days,
            batch=len(batch.serial_numbers),
        )

    def _consume_token(
        self, conn: Connection, token: str, subject: Subject, request_id: str, now: datetime
    ) -> None:
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        row = conn.execute(
            select(t.enrolment_tokens).where(t.enrolment_tokens.c.token_hash == token_hash)
        ).first()
        if row is None:
            raise ApprovalError("unknown enrolment token")
        if row.used_at is not None:
            raise ApprovalError(f"enrolment token was used already (request {row.used_by_request})")
        if now >= row.expires_at:
            raise ApprovalError(f"enrolment token expired at {row.expires_at:%Y-%m-%d %H:%M}Z")
        organization = enrolment_subject_organization(subject)
        if row.organization != organization:
            raise ApprovalError(
                f"enrolment token of {row.organization} cannot enrol identities of {organization}"
            )
        if subject.kind.value not in row.kinds:
            raise ApprovalError(f"enrolment token does not cover {subject.kind} identities")
        done = conn.execute(
            update(t.enrolment_tokens)
            .where(and_(t.enrolment_tokens.c.id == row.id, t.enrolment_tokens.c.used_at.is_(None)))
            .values(used_at=now, used_by_request=request_id)
        )
        if done.rowcount != 1:
            raise ApprovalError("enrolment token was used concurrently")

    def create_enrolment_token(
        self,
        *,
        organization: str,
        kinds: Sequence[SubjectKind] = (SubjectKind.MACHINE, SubjectKind.SOFTWARE),
        valid_for: timedelta = timedelta(hours=24),
        actor: Principal | None = None,
    ) -> str:
        """A one-time token that releases one machine or software identity of ``organization``."""
        actor = actor or local_principal()
        bad = [k for k in kinds if needs_officer(k)]
        if bad:
            raise InputError(f"enrolment tokens cannot release {', '.join(bad)} identities")
        token = secrets.token_urlsafe(32)
        now = self.now()
        with self._tx() as conn:
            conn.execute(
                insert(t.enrolment_tokens).values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    organization=organization,
                    kinds=sorted(k.value for k in kinds),
                    created_at=now,
                    created_by=str(actor),
                    expires_at=now + valid_for,
                )
            )
            self._audit(
                conn,
                actor,
                "enrolment-token.create",
                "organization",
                organization,
                kinds=sorted(k.value for k in kinds),
                expires=(now + valid_for).isoformat(),
            )
        return token

    def _level_oid(self, ca: str, level: str) -> x509.ObjectIdentifier:
        """The policy OID of ``level`` in the scheme of CA ``ca`` (levels never change)."""
        oid = self._level_oids.get((ca, level))
        if oid is None:
            oid = self.scheme(self.ca(ca).scheme).level(level).oid
            self._level_oids[(ca, level)] = oid
        return oid

    def _request_from_row(self, row: Any, ca: str) -> RequestInfo:
        m: Mapping[str, Any] = row if isinstance(row, dict) else row._mapping
        return RequestInfo(
            id=m["id"],
            ca=ca,
            kind=m["kind"],
            purpose=m["purpose"],
            level=self.level_name(m["level_oid"]),
            subject=dict(m["subject"]),
            key_origin=m["key_origin"],
            key_fingerprint=m.get("key_fingerprint"),
            lifetime_days=m.get("lifetime_days"),
            batch_size=m.get("batch_size") or 1,
            digest=m["digest"],
            state=m["state"],
            requested_by=m["requested_by"],
            requested_by_display=m["requested_by_display"],
            requested_at=m["requested_at"],
            decided_by=m.get("decided_by"),
            decided_by_display=m.get("decided_by_display"),
            decided_at=m.get("decided_at"),
            decision_rule=m.get("decision_rule"),
            decision_reason=m.get("decision_reason"),
            renewal_of=m.get("renewal_of"),
        )

    def requests(self, *, state: str | None = None, ca: str | None = None) -> list[RequestInfo]:
        query = select(t.requests, t.authorities.c.slug).join(t.authorities)
        if state == RequestState.PENDING.value:
            # A literal: the partial index of pending requests applies however the driver
            # plans parameters (PostgreSQL's generic plans would not use it).
            query = query.where(t.requests.c.state == literal_column("'pending'"))
        elif state:
            query = query.where(t.requests.c.state == state)
        if ca:
            query = query.where(t.authorities.c.slug == ca)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.requests.c.requested_at)).all()
        return [self._request_from_row(r, r.slug) for r in rows]

    def request(self, request_id: str) -> RequestInfo:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.requests, t.authorities.c.slug)
                .join(t.authorities)
                .where(t.requests.c.id == request_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", hint="trustbridge request list")
        return self._request_from_row(row, row.slug)

    def decide(
        self,
        request_id: str,
        *,
        decision: Decision,
        signature: bytes,
        officer: x509.Certificate,
    ) -> RequestInfo | Issued:
        """Apply a registration officer's signed decision: issue on approve, close on reject."""
        info = self.request(request_id)
        if info.state != RequestState.PENDING.value:
            raise ReleaseError(f"request {request_id} is {info.state}, not pending")
        requester_kind, _, requester_id = info.requested_by.partition(":")
        identity = check_officer_decision(
            decision=decision,
            signature=signature,
            officer=officer,
            verifier=self,
            request_id=request_id,
            expected_digest=info.digest,
            requester=Principal(requester_kind, requester_id, info.requested_by_display),  # type: ignore[arg-type]
            holder_key_fingerprint=info.key_fingerprint,
            at=self.now(),
        )
        officer_principal = identity.principal
        for attempt in range(_SERIAL_RETRIES):
            try:
                with self._tx() as conn:
                    conn.execute(
                        update(t.requests)
                        .where(t.requests.c.id == request_id)
                        .values(
                            decision_payload=decision.payload(),
                            decision_signature=signature,
                            decision_certificate_der=officer.public_bytes(Encoding.DER),
                        )
                    )
                    if decision.decision == "reject":
                        self._close(
                            conn,
                            request_id,
                            RequestState.REJECTED,
                            officer_principal,
                            reason=decision.reason or "rejected",
                        )
                        self._audit(
                            conn,
                            officer_principal,
                            "request.reject",
                            "request",
                            request_id,
                            reason=decision.reason,
                        )
                        return self.request_in(conn, request_id)
                    return self._release(
                        conn,
                        request_id=request_id,
                        ca=info.ca,
                        decided_by=officer_principal,
                        rule=None,
                        reason=decision.reason or "approved",
                    )
            except IntegrityError as exc:
                if "serial" in str(exc.orig).lower() and attempt + 1 < _SERIAL_RETRIES:
                    continue
                raise StoreError(f"could not record the decision: {_constraint(exc)}") from None
        raise StoreError("could not record the decision")  # pragma: no cover

    def request_in(self, conn: Connection, request_id: str) -> RequestInfo:
        row = conn.execute(
            select(t.requests, t.authorities.c.slug)
            .join(t.authorities)
            .where(t.requests.c.id == request_id)
        ).one()
        return self._request_from_row(row, row.slug)

    def _close(
        self,
        conn: Connection,
        request_id: str,
        state: RequestState,
        by: Principal,
        *,
        reason: str,
        rule: ApprovalRule | None = None,
    ) -> None:
        done = conn.execute(
            update(t.requests)
            .where(
                and_(
                    t.requests.c.id == request_id, t.requests.c.state == RequestState.PENDING.value
                )
            )
            .values(
                state=state.value,
                decided_by=str(by),
                decided_by_display=by.display,
                decided_at=self.now(),
                decision_rule=rule.value if rule else None,
                decision_reason=reason,
            )
        )
        if done.rowcount != 1:
            raise ReleaseError(f"request {request_id} was decided concurrently")

    def _release(
        self,
        conn: Connection,
        *,
        request_id: str,
        ca: str,
        decided_by: Principal,
        rule: ApprovalRule | None,
        reason: str,
    ) -> Issued:
        """Issue what pending request ``request_id`` asks for, in the caller's transaction."""
        self._close(conn, request_id, RequestState.ISSUED, decided_by, reason=reason, rule=rule)
        row = conn.execute(select(t.requests).where(t.requests.c.id == request_id)).one()
        return self._issue(
            conn,
            row=dict(row._mapping),
            ca=ca,
            subject=subject_from_dict(row.subject),
            public_key=None,
            decided_by=decided_by,
            rule=rule,
            audit=[],
        )

    def _issue(
        self,
        conn: Connection,
        *,
        row: Mapping[str, Any],
        ca: str,
        subject: Subject,
        public_key: CertificatePublicKeyTypes | None,
        decided_by: Principal,
        rule: ApprovalRule | None,
        audit: list[dict[str, Any]],
    ) -> Issued:
        """Sign and store the certificate a released request asks for."""
        authority = self.authority(ca)
        generated: tuple[Any, ...] = ()
        if row["key_origin"] == "ca-generated":
            key = generate_private_key(KeyType(row["key_type"]))
            generated = (key,)
            public_key = key.public_key()
        elif public_key is None:
            public_key = _load_public_key(row["public_key_der"])
        now = self.now()
        lifetime_days = row["lifetime_days"]
        certificate, certificate_der = authority.issue_encoded(
            subject=subject,
            public_key=public_key,
            level=x509.ObjectIdentifier(row["level_oid"]),
            at=now,
            purpose=Purpose(row["purpose"]),
            lifetime=timedelta(days=lifetime_days) if lifetime_days else None,
        )
        stored = self._certificate_row(
            certificate,
            der=certificate_der,
            ca_id=row["ca_id"],
            request_id=row["id"],
            subject=subject,
            purpose=Purpose(row["purpose"]),
            level=row["level_oid"],
            key_origin=row["key_origin"],
            issued_by=decided_by,
            now=now,
            renewal_of=row["renewal_of"],
            public_key_der=row["public_key_der"],
        )
        self._insert(conn, t.certificates, [stored])
        self.log.append(
            EntryKind.CERTIFICATE_ISSUED,
            certificate_entry(
                certificate, ca=ca, kind=subject.kind.value, der=stored["der"], dn=subject.dn
            ),
            subject=stored["serial"],
            conn=conn,
        )
        audit.append(
            self._audit_row(
                decided_by,
                "certificate.issue",
                "certificate",
                stored["serial"],
                ca=ca,
                request=row["id"],
                holder=subject.display_name,
                rule=rule.value if rule else None,
                key_origin=row["key_origin"],
            )
        )
        self._insert(conn, t.audit_events, audit)
        return Issued(
            request=self._request_from_row(row, ca),
            certificates=(certificate,),
            chain=(authority.certificate, *authority.chain),
            generated_keys=generated,
        )

    def _certificate_row(
        self,
        certificate: x509.Certificate,
        *,
        ca_id: int,
        request_id: str,
        subject: Subject,
        purpose: Purpose,
        level: str,
        key_origin: str,
        issued_by: Principal,
        now: datetime,
        renewal_of: int | None = None,
        public_key_der: bytes | None = None,
        der: bytes | None = None,
    ) -> dict[str, Any]:
        if der is None:
            der = certificate.public_bytes(Encoding.DER)
        if public_key_der is None:
            public_key_der = certificate.public_key().public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo
            )
        return {
            "ca_id": ca_id,
            "serial": format(certificate.serial_number, "x"),
            "request_id": request_id,
            "kind": subject.kind.value,
            "purpose": purpose.value,
            "holder": subject.display_name[:200],
            "level_oid": level,
            "not_before": certificate.not_valid_before_utc,
            "not_after": certificate.not_valid_after_utc,
            "key_fingerprint": hashlib.sha256(public_key_der).hexdigest(),
            "fingerprint": hashlib.sha256(der).hexdigest(),
            "der": der,
            "key_origin": key_origin,
            "issued_at": now,
            "issued_by": str(issued_by),
            "renewal_of": renewal_of,
        }

    def bootstrap_officer(
        self,
        *,
        ca: str,
        subject: PersonSubject,
        level: str,
        csr_data: bytes,
        csr_source: str = "CSR",
        actor: Principal | None = None,
    ) -> Issued:
        """Issue the first registration officer of this home, without an approval.

        Allowed only while no valid registration-officer identity exists: afterwards every
        officer is released by another officer.
        """
        actor = actor or local_principal()
        if Role.REGISTRATION_OFFICER not in subject.roles:
            raise InputError("the bootstrap identity must carry the registration-officer role")
        if self._has_officer():
            raise ReleaseError(
                "this home has a registration officer already; bootstrap is closed",
                hint="submit a request and have an officer approve it",
            )
        pending = self.submit_request(
            ca=ca,
            subject=subject,
            level=level,
            csr_data=csr_data,
            csr_source=csr_source,
            requester=actor,
        )
        assert isinstance(pending, RequestInfo)
        ceremony = Principal("bootstrap", actor.ident, f"bootstrap ceremony by {actor.display}")
        with self._tx() as conn:
            return self._release(
                conn,
                request_id=pending.id,
                ca=ca,
                decided_by=ceremony,
                rule=None,
                reason="bootstrap of the first registration officer",
            )

    def _has_officer(self) -> bool:
        now = self.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.certificates.c.der).where(
                    and_(
                        t.certificates.c.kind == SubjectKind.PERSON.value,
                        t.certificates.c.status == "good",
                        t.certificates.c.not_after > now,
                    )
                )
            ).scalars()
            return any(
                Role.REGISTRATION_OFFICER in roles_of(x509.load_der_x509_certificate(der))
                for der in rows
            )

    # -- production batches ---------------------------------------------------------------------

    def issue_machine_batch(
        self,
        batch: ProductionBatch,
        *,
        enrolment: EnrolmentProof,
        chunk_size: int = 500,
    ) -> Iterator[tuple[list[x509.Certificate], list[Any]]]:
        """Issue machine identities for a production batch, keys generated at manufacture.

        The batch is one request, released by the manufacturer's enrolment credential; the
        certificates are stored ``chunk_size`` per transaction. Yields each chunk's
        certificates and keys as soon as it is committed; keys are never stored.
        """
        ca = batch.ca
        key_type = batch.key_type
        lifetime_days = batch.lifetime_days
        authority = self.authority(ca)
        level_oid = self._level_oid(ca, batch.level)
        template = batch.template()
        subjects = batch.subjects()
        authority.check_request(subject=subjects[0], level=level_oid, key_type=key_type)
        digest = self.batch_digest(batch)
        verify_statement_signature(
            enrolment.certificate, enrolment_payload(digest), enrolment.signature
        )
        credential = self.verify_identity(enrolment.certificate)
        check_enrolment_credential(subjects[0], credential)
        request_id = str(uuid.uuid4())
        now = self.now()
        rule = ApprovalRule.ENROLMENT_CREDENTIAL
        rule_principal = Principal("rule", rule.value, f"approval rule {rule.value}")
        with self._tx() as conn:
            ca_id = self._ca_id(conn, ca)
            conn.execute(
                insert(t.requests).values(
                    id=request_id,
                    ca_id=ca_id,
                    kind="machine",
                    purpose=Purpose.IDENTITY.value,
                    level_oid=level_oid.dotted_string,
                    subject=template,
                    csr_der=None,
                    public_key_der=None,
                    key_fingerprint=None,
                    key_origin="ca-generated",
                    key_type=key_type.value,
                    lifetime_days=lifetime_days,
                    batch_size=len(subjects),
                    digest=digest,
                    state=RequestState.PENDING.value,
                    requested_by=str(credential.principal),
                    requested_by_display=credential.principal.display,
                    requested_at=now,
                )
            )
            self._audit(
                conn,
                credential.principal,
                "request.submit",
                "request",
                request_id,
                kind="machine",
                ca=ca,
                batch=len(subjects),
                model=batch.model,
            )
            self._close(
                conn,
                request_id,
                RequestState.ISSUING,
                rule_principal,
                reason=f"production batch released by rule {rule.value}",
                rule=rule,
            )
        lifetime = timedelta(days=lifetime_days) if lifetime_days else None
        issued_by = str(rule_principal)
        for start in range(0, len(subjects), chunk_size):
            part = subjects[start : start + chunk_size]
            keys = [generate_private_key(key_type) for _ in part]
            public_keys = [k.public_key() for k in keys]
            spkis = [
                k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) for k in public_keys
            ]
            at = self.now()
            issued = authority.issue_many(
                subjects=part,
                public_keys=public_keys,
                level=level_oid,
                at=at,
                lifetime=lifetime,
            )
            certs = [cert for cert, _ in issued]
            rows: list[dict[str, Any]] = []
            entries: list[tuple[EntryKind, dict[str, Any], str | None]] = []
            for s, (cert, der), spki in zip(part, issued, spkis, strict=True):
                serial = format(cert.serial_number, "x")
                entries.append(
                    (
                        EntryKind.CERTIFICATE_ISSUED,
                        certificate_entry(cert, ca=ca, kind="machine", der=der, dn=s.dn),
                        serial,
                    )
                )
                rows.append(
                    {
                        "ca_id": ca_id,
                        "serial": serial,
                        "request_id": request_id,
                        "kind": "machine",
                        "purpose": "identity",
                        "holder": s.display_name[:200],
                        "level_oid": level_oid.dotted_string,
                        "not_before": at,
                        "not_after": cert.not_valid_after_utc,
                        "key_fingerprint": hashlib.sha256(spki).hexdigest(),
                        "fingerprint": hashlib.sha256(der).hexdigest(),
                        "der": der,
                        "key_origin": "ca-generated",
                        "issued_at": at,
                        "issued_by": issued_by,
                        "renewal_of": None,
                    }
                )
            with self._tx() as conn:
                self._insert(conn, t.certificates, rows)
                self.log.append_many(entries, conn=conn)
                self._audit(
                    conn,
                    rule_principal,
                    "certificate.issue-batch",
                    "request",
                    request_id,
                    ca=ca,
                    count=len(rows),
                    first=part[0].serial_number,
                    last=part[-1].serial_number,
                    key_origin="ca-generated",
                )
                if start + chunk_size >= len(subjects):
                    conn.execute(
                        update(t.requests)
                        .where(t.requests.c.id == request_id)
                        .values(state=RequestState.ISSUED.value)
                    )
            yield certs, keys

    # -- certificates --------------------------------------------------------------------------

    def _certificate_info(self, row: Any) -> CertificateInfo:
        return CertificateInfo(
            id=row.id,
            serial=row.serial,
            ca=row.slug,
            kind=row.kind,
            purpose=row.purpose,
            holder=row.holder,
            level=self.level_name(row.level_oid) if row.level_oid else "",
            not_before=row.not_before,
            not_after=row.not_after,
            status=row.status,
            key_origin=row.key_origin,
            fingerprint=row.fingerprint,
            key_fingerprint=row.key_fingerprint,
            request_id=row.request_id,
            issued_at=row.issued_at,
            issued_by=row.issued_by,
            renewal_of=row.renewal_of,
            der=row.der,
            revoked_at=row.revoked_at if row.status != "good" else None,
            revocation_reason=row.revocation_reason if row.status != "good" else None,
            invalidity_date=row.invalidity_date if row.status != "good" else None,
        )

    def certificates(
        self,
        *,
        kind: str | None = None,
        holder: str | None = None,
        ca: str | None = None,
        status: str | None = None,
        expiring_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[CertificateInfo]:
        """Search issued certificates."""
        query = select(t.certificates, t.authorities.c.slug).join(
            t.authorities, t.certificates.c.ca_id == t.authorities.c.id
        )
        if kind:
            query = query.where(t.certificates.c.kind == kind)
        if holder:
            query = query.where(func.lower(t.certificates.c.holder).contains(holder.lower()))
        if ca:
            query = query.where(t.authorities.c.slug == ca)
        if status:
            query = query.where(t.certificates.c.status == status)
        if expiring_before:
            query = query.where(t.certificates.c.not_after < expiring_before)
        query = query.order_by(t.certificates.c.id)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._certificate_info(r) for r in conn.execute(query).all()]

    def certificate(self, serial: str, *, ca: str | None = None) -> CertificateInfo:
        """One certificate by serial number (hex, with or without colons, or decimal)."""
        text = serial.strip().lower().replace(":", "")
        candidates = {text.lstrip("0") or "0"}
        if text.isdigit():
            candidates.add(format(int(text), "x"))
        if text.startswith("0x"):
            candidates.add(text[2:].lstrip("0"))
        query = (
            select(t.certificates, t.authorities.c.slug)
            .join(t.authorities, t.certificates.c.ca_id == t.authorities.c.id)
            .where(t.certificates.c.serial.in_(candidates))
        )
        if ca:
            query = query.where(t.authorities.c.slug == ca)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFoundError(
                f"no certificate with serial {serial}", hint="trustbridge cert list"
            )
        if len(rows) > 1:
            raise InputError(
                f"serial {serial} is ambiguous ({len(rows)} matches)",
                hint="pass --ca or the hex form",
            )
        return self._certificate_info(rows[0])

    def certificate_by_fingerprint(self, fingerprint: str) -> CertificateInfo:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.certificates, t.authorities.c.slug)
                .join(t.authorities, t.certificates.c.ca_id == t.authorities.c.id)
                .where(t.certificates.c.fingerprint == fingerprint)
            ).first()
        if row is None:
            raise NotFoundError(f"no certificate with fingerprint {fingerprint}")
        return self._certificate_info(row)

    def _renewal_basis(self, serial: str, ca: str | None) -> tuple[CertificateInfo, RequestInfo]:
        info = self.certificate(serial, ca=ca)
        if info.kind == "ca":
            raise InputError("CA certificates are renewed by rolling the CA over, not here")
        if info.status != "good":
            raise ReleaseError(f"certificate {info.serial} is {info.status}; it cannot be renewed")
        if info.request_id is None:
            raise ReleaseError(f"certificate {info.serial} has no originating request")
        request = self.request(info.request_id)
        if request.batch_size != 1:
            raise ReleaseError(
                "identities from a production batch are renewed by re-enrolment (EST), "
                "not from the batch request"
            )
        return info, request

    def renew(
        self,
        serial: str,
        *,
        ca: str | None = None,
        lifetime_days: int | None = None,
        requester: Principal | None = None,
        enrolment: EnrolmentProof | None = None,
        current_identity: x509.Certificate | None = None,
    ) -> RequestInfo | Issued:
        """Request a new certificate for the same subject and the same key."""
        info, request = self._renewal_basis(serial, ca)
        return self.submit_request(
            current_identity=current_identity,
            ca=info.ca,
            subject=subject_from_dict(request.subject),
            level=request.level,
            public_key=info.certificate.public_key(),
            purpose=Purpose(request.purpose),
            lifetime_days=lifetime_days,
            requester=requester,
            enrolment=enrolment,
            renewal_of=info.id,
        )

    def renewal_digest(
        self,
        serial: str,
        *,
        ca: str | None = None,
        lifetime_days: int | None = None,
        rekey_csr: bytes | None = None,
    ) -> str:
        """The digest a renewal (or rekey) request will carry, for signing an enrolment proof."""
        info, request = self._renewal_basis(serial, ca)
        return self.request_digest_for(
            ca=info.ca,
            subject=subject_from_dict(request.subject),
            level=request.level,
            csr_data=rekey_csr,
            public_key=None if rekey_csr is not None else info.certificate.public_key(),
            purpose=Purpose(request.purpose),
            lifetime_days=lifetime_days,
        )

    def rekey(
        self,
        serial: str,
        *,
        csr_data: bytes,
        csr_source: str = "CSR",
        ca: str | None = None,
        lifetime_days: int | None = None,
        requester: Principal | None = None,
        enrolment: EnrolmentProof | None = None,
        current_identity: x509.Certificate | None = None,
    ) -> RequestInfo | Issued:
        """Request a certificate for the same subject with a new key (from a new CSR)."""
        info, request = self._renewal_basis(serial, ca)
        csr = load_csr(csr_data, source=csr_source)
        if key_fingerprint(csr.public_key()) == info.key_fingerprint:
            raise InputError("a rekey needs a new key; this CSR holds the current one (use renew)")
        return self.submit_request(
            current_identity=current_identity,
            ca=info.ca,
            subject=subject_from_dict(request.subject),
            level=request.level,
            csr_data=csr_data,
            csr_source=csr_source,
            purpose=Purpose(request.purpose),
            lifetime_days=lifetime_days,
            requester=requester,
            enrolment=enrolment,
            renewal_of=info.id,
        )

    def chain_for(self, info: CertificateInfo) -> tuple[x509.Certificate, ...]:
        """Issuing CA and above, up to the root, for an issued certificate."""
        return self.chain_of(info.ca)

    # -- audit ---------------------------------------------------------------------------------

    def audit_events(self, *, object_id: str | None = None, limit: int = 200) -> list[AuditEvent]:
        query = select(t.audit_events).order_by(t.audit_events.c.id.desc()).limit(limit)
        if object_id:
            query = query.where(t.audit_events.c.object_id == object_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(
                r.at,
                r.actor,
                r.actor_display,
                r.action,
                r.object_type,
                r.object_id,
                dict(r.details),
            )
            for r in reversed(rows)
        ]


def _constraint(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0]


def _load_public_key(der: bytes) -> CertificatePublicKeyTypes:
    key = load_der_public_key(der)
    if not isinstance(
        key,
        ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey,
    ):
        raise InputError(f"stored public key has unsupported type {type(key).__name__}")
    return key
