"""Certificate status of a home: revoke, suspend, resume; CRLs; OCSP responses; TSA keys.

Every status change runs in one transaction that also bumps the CA's ``status_version``
(serializing changes per CA on SQLite and PostgreSQL alike), drops the pre-signed OCSP
responses of the certificate and records an audit event. Right after the commit the CRLs are
reissued and the OCSP responses re-signed; a node that answers before that signs on demand from
the database, so the first query after ``revoke`` returns already sees the revocation, on every
node that shares the database.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from trustbridge import oids
from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, NotFoundError, ReleaseError
from trustbridge.home.records import CertificateInfo, local_principal
from trustbridge.ledger.entries import EntryKind
from trustbridge.pki import pkcs11
from trustbridge.pki.ca import ServiceKind
from trustbridge.pki.keys import (
    KeyType,
    generate_private_key,
    write_private_key_file,
)
from trustbridge.pki.release import Principal
from trustbridge.pki.revocation import (
    CertStatus,
    CrlSpec,
    OcspQuery,
    OcspRequestError,
    OcspSigner,
    Reason,
    StatusEntry,
    build_crl,
    hash_names,
    issuer_hashes,
    ocsp_error,
    parse_ocsp_request,
)
from trustbridge.pki.signers import FileSigner, Signer
from trustbridge.pki.tsa import TimestampAuthority
from trustbridge.store import tables as t

if TYPE_CHECKING:
    from trustbridge.home.home import Home

__all__ = ["CrlInfo", "OcspAnswer", "StatusPolicy", "StatusService"]


@dataclass(frozen=True)
class StatusPolicy:
    """How long status information lives and when it is renewed."""

    crl_validity: timedelta = timedelta(hours=24)
    #: A full CRL is reissued when less than this is left before its nextUpdate.
    crl_renew_before: timedelta = timedelta(hours=6)
    #: Up to this many revoked entries, every status change reissues the full CRL too; above,
    #: only the delta CRL (the full one follows on schedule).
    full_crl_on_change_limit: int = 10_000
    ocsp_validity: timedelta = timedelta(hours=24)
    #: Pre-signed responses are re-signed when less than this is left before nextUpdate.
    ocsp_renew_before: timedelta = timedelta(hours=12)
    responder_lifetime: timedelta = timedelta(days=30)
    #: A responder certificate is replaced when less than this is left.
    responder_renew_before: timedelta = timedelta(days=10)
    tsa_lifetime: timedelta = timedelta(days=365 * 2)
    tls_lifetime: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class CrlInfo:
    ca: str
    number: int
    delta: bool
    base_number: int | None
    this_update: datetime
    next_update: datetime
    entries: int
    der: bytes


@dataclass(frozen=True)
class OcspAnswer:
    """What the responder sends: the DER response and, for cacheable answers, its lifetime."""

    der: bytes
    next_update: datetime | None = None
    this_update: datetime | None = None

    @property
    def cacheable(self) -> bool:
        return self.next_update is not None


_STATUS_COLUMNS = (
    t.certificates.c.serial,
    t.certificates.c.status,
    t.certificates.c.revoked_at,
    t.certificates.c.revocation_reason,
    t.certificates.c.invalidity_date,
)
_RESPONSE_BY_CERT = select(t.ocsp_responses.c.der, t.ocsp_responses.c.next_update).where(
    and_(
        t.ocsp_responses.c.ca_id == bindparam("ca_id"),
        t.ocsp_responses.c.serial == bindparam("serial"),
        t.ocsp_responses.c.hash == bindparam("hash"),
    )
)
_STATUS_BY_SERIAL = select(*_STATUS_COLUMNS).where(
    and_(
        t.certificates.c.ca_id == bindparam("ca_id"),
        t.certificates.c.serial == bindparam("serial"),
    )
)


#: The status columns as the driver returns them, for reading a CA's revocations in bulk:
#: without the per-value conversions of UtcDateTime (:func:`_utc` does them, cheaper).
_RAW_STATUS_COLUMNS = (
    t.certificates.c.serial,
    t.certificates.c.status,
    type_coerce(t.certificates.c.revoked_at, NullType()),
    t.certificates.c.revocation_reason,
    type_coerce(t.certificates.c.invalidity_date, NullType()),
)
_STATUSES = {s.value: s for s in CertStatus}
_REASONS = {r.value: r for r in Reason}


def _utc(value: datetime | str | None) -> datetime | None:
    """A stored time as aware UTC, from a typed row or as the driver returns it.

    SQLite keeps :class:`~trustbridge.store.types.UtcDateTime` values as naive-UTC ISO text;
    PostgreSQL drivers return aware datetimes.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")  # faster than .replace(tzinfo=UTC)
    return ensure_utc(value)


def _entry(row: Any) -> StatusEntry:
    """A row of :data:`_STATUS_COLUMNS` or :data:`_RAW_STATUS_COLUMNS` as a status entry."""
    serial, status, revoked_at, reason, invalidity_date = row
    return StatusEntry(
        serial=int(serial, 16),
        status=_STATUSES[status],
        revoked_at=_utc(revoked_at),
        reason=_REASONS[reason] if reason else None,
        invalidity_date=_utc(invalidity_date),
    )


def _entries(conn: Connection, where: ColumnElement[bool]) -> list[StatusEntry]:
    """The status entries of the certificates ``where`` selects, read in bulk."""
    query = select(*_RAW_STATUS_COLUMNS).where(where).execution_options(yield_per=_BULK_ROWS)
    return [_entry(row) for row in conn.execute(query)]


#: Rows fetched at a time when reading a CA's revocations (a server-side cursor on PostgreSQL).
_BULK_ROWS = 10_000


class StatusService:
    """Revocation, CRLs, OCSP and the CAs' service keys of one home."""

    def __init__(self, home: Home, policy: StatusPolicy | None = None) -> None:
        self.home = home
        self.policy = policy or StatusPolicy()
        self._responders: dict[str, OcspSigner] = {}
        self._tsas: dict[str, TimestampAuthority] = {}
        self._issuers: dict[tuple[str, bytes, bytes], str] | None = None
        self._lock = threading.Lock()

    # -- status changes ------------------------------------------------------------------------

    def revoke(
        self,
        serial: str,
        *,
        reason: Reason = Reason.UNSPECIFIED,
        ca: str | None = None,
        invalidity_date: datetime | None = None,
        actor: Principal | None = None,
    ) -> CertificateInfo:
        """Revoke a certificate for good (a held one too).

        ``certificate-hold`` is not a reason here: that is :meth:`suspend`.
        """
        if reason is Reason.CERTIFICATE_HOLD:
            raise InputError(
                "certificate-hold is not a revocation reason here",
                hint="use trustbridge suspend SERIAL (and resume SERIAL to lift it)",
            )
        now = self.home.now()
        if invalidity_date is not None:
            if invalidity_date.tzinfo is None:
                raise InputError("the compromise date needs a time zone (for example ...Z)")
            if invalidity_date > now:
                raise InputError(
                    f"compromise date {invalidity_date:%Y-%m-%d %H:%M}Z lies in the future"
                )
        return self._change(
            serial,
            ca=ca,
            allowed={CertStatus.GOOD, CertStatus.ON_HOLD},
            new=CertStatus.REVOKED,
            reason=reason,
            invalidity_date=invalidity_date,
            action="certificate.revoke",
            actor=actor,
        )

    def suspend(
        self, serial: str, *, ca: str | None = None, actor: Principal | None = None
    ) -> CertificateInfo:
        """Put a certificate on hold (``certificateHold``); :meth:`resume` lifts it."""
        return self._change(
            serial,
            ca=ca,
            allowed={CertStatus.GOOD},
            new=CertStatus.ON_HOLD,
            reason=Reason.CERTIFICATE_HOLD,
            invalidity_date=None,
            action="certificate.suspend",
            actor=actor,
        )

    def resume(
        self, serial: str, *, ca: str | None = None, actor: Principal | None = None
    ) -> CertificateInfo:
        """Lift a hold: the certificate is good again (delta CRLs say ``removeFromCRL``)."""
        return self._change(
            serial,
            ca=ca,
            allowed={CertStatus.ON_HOLD},
            new=CertStatus.GOOD,
            reason=None,
            invalidity_date=None,
            action="certificate.resume",
            actor=actor,
        )

    def _change(
        self,
        serial: str,
        *,
        ca: str | None,
        allowed: set[CertStatus],
        new: CertStatus,
        reason: Reason | None,
        invalidity_date: datetime | None,
        action: str,
        actor: Principal | None,
    ) -> CertificateInfo:
        home = self.home
        info = home.certificate(serial, ca=ca)
        actor = actor or local_principal()
        now = home.now()
        with home._tx() as conn:
            ca_id = home._ca_id(conn, info.ca)
            # Taking the CA row first serializes status changes and CRL issuance per CA.
            version = conn.execute(
                update(t.authorities)
                .where(t.authorities.c.id == ca_id)
                .values(status_version=t.authorities.c.status_version + 1)
                .returning(t.authorities.c.status_version)
            ).scalar_one()
            current = conn.execute(
                select(t.certificates.c.status, t.certificates.c.not_after).where(
                    t.certificates.c.id == info.id
                )
            ).one()
            status = CertStatus(current.status)
            if status not in allowed:
                raise ReleaseError(_refusal(info.serial, status, new))
            values: dict[str, Any] = {
                "status": new.value,
                "status_version": version,
                "status_changed_by": str(actor),
            }
            if new is not CertStatus.GOOD:
                values |= {
                    "revoked_at": now.replace(microsecond=0),
                    "revocation_reason": reason.value if reason else None,
                    "invalidity_date": invalidity_date,
                }
            else:
                # revoked_at stays: a delta CRL names the released hold with its date.
                values |= {"revocation_reason": None, "invalidity_date": None}
            conn.execute(
                update(t.certificates).where(t.certificates.c.id == info.id).values(**values)
            )
            conn.execute(
                delete(t.ocsp_responses).where(
                    and_(
                        t.ocsp_responses.c.ca_id == ca_id,
                        t.ocsp_responses.c.serial == info.serial,
                    )
                )
            )
            details: dict[str, Any] = {"ca": info.ca, "holder": info.holder, "from": status.value}
            if reason is not None:
                details["reason"] = reason.value
            if invalidity_date is not None:
                details["invalidity_date"] = invalidity_date.isoformat()
            home._audit(conn, actor, action, "certificate", info.serial, **details)
            home.log.append(
                EntryKind.CERTIFICATE_STATUS,
                {
                    "ca": info.ca,
                    "serial": info.serial,
                    "sha256": info.fingerprint,
                    "status": new.value,
                    "from": status.value,
                    "reason": reason.value if reason else None,
                    "at": values["revoked_at"].isoformat() if "revoked_at" in values else None,
                    "invalidity_date": invalidity_date.isoformat() if invalidity_date else None,
                },
                subject=info.serial,
                conn=conn,
            )
        # After the commit: publish. A failure here leaves the change in force; the node
        # answers from the database and republishes on its next refresh.
        self.publish_change(info.ca, info.serial)
        return home.certificate(info.serial, ca=info.ca)

    def publish_change(self, ca: str, serial: str) -> None:
        """Reissue the CRLs of ``ca`` and re-sign the OCSP responses of ``serial``."""
        with self.home.engine.connect() as conn:
            revoked = conn.execute(
                select(func.count())
                .select_from(t.certificates)
                .where(
                    and_(
                        t.certificates.c.ca_id == self.home._ca_id(conn, ca),
                        t.certificates.c.status != CertStatus.GOOD.value,
                    )
                )
            ).scalar_one()
        self.issue_crls(ca, full=revoked <= self.policy.full_crl_on_change_limit)
        self.presign(ca, serials=[serial])

    # -- CRLs ----------------------------------------------------------------------------------

    def issue_crls(self, ca: str, *, full: bool = True, delta: bool = True) -> list[CrlInfo]:
        """Issue a full CRL (and a delta CRL on the previous full one), or a delta CRL only."""
        home = self.home
        authority = home.authority(ca)
        now = home.now().replace(microsecond=0)
        next_update = now + self.policy.crl_validity
        next_update = min(next_update, authority.not_after)
        with home._tx() as conn:
            ca_id = home._ca_id(conn, ca)
            number, version = conn.execute(
                update(t.authorities)
                .where(t.authorities.c.id == ca_id)
                .values(crl_number=t.authorities.c.crl_number + 1)
                .returning(t.authorities.c.crl_number, t.authorities.c.status_version)
            ).one()
            base = conn.execute(
                select(t.crls.c.number, t.crls.c.status_version)
                .where(and_(t.crls.c.ca_id == ca_id, t.crls.c.delta.is_(False)))
                .order_by(t.crls.c.number.desc())
                .limit(1)
            ).first()
            if base is None:
                # The first CRL is a full one without FreshestCRL: no delta CRL exists yet, and
                # a strict validator refuses a full CRL whose named delta it cannot find.
                full, delta = True, False
            if not full and not delta:
                raise InputError("issue a full CRL, a delta CRL or both")
            revoked = (
                _entries(
                    conn,
                    and_(
                        t.certificates.c.ca_id == ca_id,
                        t.certificates.c.status != CertStatus.GOOD.value,
                        # Expired certificates leave the CRL (RFC 5280 3.3).
                        t.certificates.c.not_after >= now,
                    ),
                )
                if full
                else []
            )
            changed = (
                _entries(
                    conn,
                    and_(
                        t.certificates.c.ca_id == ca_id,
                        t.certificates.c.status_version > base.status_version,
                        # Implied by the line above (versions start at 0); stated as such,
                        # it lets the partial index ix_certificates_status_version apply.
                        t.certificates.c.status_version > literal_column("0"),
                    ),
                )
                if delta and base is not None
                else []
            )
        # Signed outside the transaction: a CA with a million entries does not hold the lock.
        endpoints = authority.endpoints
        issued: list[CrlInfo] = []
        rows: list[dict[str, Any]] = []
        plan: list[tuple[bool, list[StatusEntry]]] = []
        if full:
            plan.append((False, revoked))
        if delta and base is not None:
            plan.append((True, changed))
        for is_delta, entries in plan:
            spec = CrlSpec(
                number=number,
                this_update=now,
                next_update=next_update,
                delta_base=base.number if is_delta and base is not None else None,
                delta_url=endpoints.delta_crl_url if base is not None else None,
            )
            der = build_crl(
                issuer=authority.certificate, signer=authority.signer, entries=entries, spec=spec
            )
            count = sum(1 for e in entries if e.status is not CertStatus.GOOD or is_delta)
            rows.append(
                {
                    "ca_id": home._ca_ids[ca],
                    "number": number,
                    "delta": is_delta,
                    "base_number": spec.delta_base,
                    "status_version": version,
                    "this_update": now,
                    "next_update": next_update,
                    "entries": count,
                    "der": der,
                }
            )
            issued.append(
                CrlInfo(ca, number, is_delta, spec.delta_base, now, next_update, count, der)
            )
        with home._tx() as conn:
            conn.execute(insert(t.crls), rows)
            for info in issued:
                home._audit(
                    conn,
                    Principal("node", home.config.node_name, home.config.node_name),
                    "crl.issue",
                    "crl",
                    f"{ca}/{info.number}{'-delta' if info.delta else ''}",
                    ca=ca,
                    entries=info.entries,
                    next_update=info.next_update.isoformat(),
                )
        return issued

    def latest_crl(self, ca: str, *, delta: bool = False) -> CrlInfo:
        """The newest CRL of ``ca`` (full or delta); :class:`NotFoundError` if none exists."""
        with self.home.engine.connect() as conn:
            row = conn.execute(
                select(t.crls)
                .where(
                    and_(t.crls.c.ca_id == self.home._ca_id(conn, ca), t.crls.c.delta.is_(delta))
                )
                .order_by(t.crls.c.number.desc())
                .limit(1)
            ).first()
        if row is None:
            kind = "delta CRL" if delta else "CRL"
            raise NotFoundError(f"CA {ca} has issued no {kind} yet", hint="trustbridge crl issue")
        return CrlInfo(
            ca,
            row.number,
            row.delta,
            row.base_number,
            row.this_update,
            row.next_update,
            row.entries,
            row.der,
        )

    def refresh_crls(self) -> list[CrlInfo]:
        """Issue a new full CRL (and delta) for every CA whose latest is missing or due."""
        issued: list[CrlInfo] = []
        due = self.home.now() + self.policy.crl_renew_before
        for info in self.home.cas():
            if info.state != "active":
                continue
            try:
                latest = self.latest_crl(info.slug)
            except NotFoundError:
                latest = None
            if latest is None or latest.next_update <= due:
                issued += self.issue_crls(info.slug)
        return issued

    # -- OCSP ----------------------------------------------------------------------------------

    def responder(self, ca: str) -> OcspSigner:
        """The delegated OCSP responder of ``ca``, created or renewed when needed."""
        with self._lock:
            cached = self._responders.get(ca)
            now = self.home.now()
            if cached is not None and self._fresh(cached.certificate, now):
                return cached
            certificate, signer = self._service_key(ca, ServiceKind.OCSP, now)
            authority = self.home.authority(ca)
            responder = OcspSigner(
                issuer=authority.certificate,
                certificate=certificate,
                signer=signer,
                validity=self.policy.ocsp_validity,
            )
            self._responders[ca] = responder
            return responder

    def tsa(self, ca: str) -> TimestampAuthority:
        """The time-stamping authority of ``ca`` (its TSA certificate made when first needed)."""
        with self._lock:
            cached = self._tsas.get(ca)
            now = self.home.now()
            if cached is not None and cached.certificate.not_valid_after_utc - now > _TSA_RENEW:
                return cached
            certificate, signer = self._service_key(ca, ServiceKind.TSA, now)
            authority = TimestampAuthority(
                signer=signer,
                certificate=certificate,
                chain=self.home.chain_of(ca),
                policy=oids.TSA_POLICY,
                clock=self.home.clock,
            )
            self._tsas[ca] = authority
            return authority

    def default_tsa_ca(self) -> str:
        """The CA whose TSA answers at ``/tsa``: the first issuing CA, else the first root."""
        active = [c for c in self.home.cas() if c.state == "active"]
        if not active:
            raise NotFoundError("this home has no active CA, so no time-stamping authority")
        issuing = [c for c in active if not c.is_root]
        return (issuing or active)[0].slug

    def _fresh(self, certificate: x509.Certificate, now: datetime) -> bool:
        return certificate.not_valid_after_utc - now > self.policy.responder_renew_before

    def service_certificate(
        self, ca: str, service: ServiceKind, *, hosts: Sequence[str] = ()
    ) -> tuple[x509.Certificate, Signer]:
        """The current key and certificate of a CA's service (OCSP responder, TSA, TLS)."""
        return self._service_key(ca, service, self.home.now(), hosts=hosts)

    def _service_key(
        self, ca: str, service: ServiceKind, now: datetime, *, hosts: Sequence[str] = ()
    ) -> tuple[x509.Certificate, Signer]:
        home = self.home
        renew = self.policy.responder_renew_before if service is ServiceKind.OCSP else _TSA_RENEW
        with home.engine.connect() as conn:
            ca_id = home._ca_id(conn, ca)
            row = conn.execute(
                select(t.service_keys)
                .where(
                    and_(
                        t.service_keys.c.ca_id == ca_id,
                        t.service_keys.c.service == service.value,
                        t.service_keys.c.not_after > now + renew,
                    )
                )
                .order_by(t.service_keys.c.id.desc())
                .limit(1)
            ).first()
        if row is not None:
            certificate = x509.load_der_x509_certificate(row.certificate_der)
            if service is not ServiceKind.TLS or _names_hosts(certificate, hosts):
                return certificate, home._load_signer(ca, row.key_store, row.key_ref)
        return self._new_service_key(ca, service, now, hosts=hosts)

    def _new_service_key(
        self, ca: str, service: ServiceKind, now: datetime, *, hosts: Sequence[str] = ()
    ) -> tuple[x509.Certificate, Signer]:
        home = self.home
        authority = home.authority(ca)
        stamp = now.strftime("%Y%m%dT%H%M%S")
        info = home.ca(ca)
        signer: Signer
        path: Path | None = None
        if info.key_store == "pkcs11" and service is not ServiceKind.TLS:
            # The responder and TSA keys live in the CA's token, beside the CA key; the TLS key
            # must be a file, since the TLS stack loads it.
            ca_ref = pkcs11.Pkcs11KeyRef.parse(info.key_ref)
            ref = pkcs11.Pkcs11KeyRef(
                ca_ref.module, ca_ref.token, f"{ca}-{service.value}-{stamp}-{now.microsecond:06d}"
            )
            signer = pkcs11.generate_key(ref, KeyType.P256, home._secret(ca).decode())
            store, rel = "pkcs11", ref.uri()
        else:
            key = generate_private_key(KeyType.P256)
            rel = f"keys/{ca}-{service.value}-{stamp}.key.pem"
            path = home.path / rel
            if path.exists():
                rel = f"keys/{ca}-{service.value}-{stamp}-{now.microsecond:06d}.key.pem"
                path = home.path / rel
            write_private_key_file(path, key, home._secret(ca))
            signer, store = FileSigner(key, rel), "file"
        lifetime = {
            ServiceKind.OCSP: self.policy.responder_lifetime,
            ServiceKind.TSA: self.policy.tsa_lifetime,
            ServiceKind.TLS: self.policy.tls_lifetime,
        }[service]
        try:
            certificate = authority.issue_service(
                service=service,
                public_key=signer.public_key,
                at=now,
                lifetime=lifetime,
                hosts=hosts,
            )
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        actor = local_principal()
        try:
            with home._tx() as conn:
                conn.execute(
                    insert(t.service_keys),
                    {
                        "ca_id": home._ca_id(conn, ca),
                        "service": service.value,
                        "key_store": store,
                        "key_ref": rel,
                        "certificate_der": certificate.public_bytes(_DER),
                        "not_after": certificate.not_valid_after_utc,
                        "created_at": now,
                        "created_by": str(actor),
                    },
                )
                home._audit(
                    conn,
                    actor,
                    f"{service.value}.key",
                    "service-key",
                    f"{ca}/{service.value}/{certificate.serial_number:x}",
                    ca=ca,
                    not_after=certificate.not_valid_after_utc.isoformat(),
                )
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        return certificate, signer

    def _issuer_index(self) -> dict[tuple[str, bytes, bytes], str]:
        index = self._issuers
        if index is None:
            index = {}
            for info in self.home.cas():
                if info.state != "active" or info.certificate is None:
                    continue
                for name, (name_hash, key_hash) in issuer_hashes(info.certificate).items():
                    index[(name, name_hash, key_hash)] = info.slug
            self._issuers = index
        return index

    def forget_issuers(self) -> None:
        """Drop cached CA data (after a CA was created or installed)."""
        self._issuers = None

    def find_issuer(self, query: OcspQuery) -> str | None:
        """The CA a query asks about, among this home's active CAs (None: not ours)."""
        key = (query.hash_name, query.issuer_name_hash, query.issuer_key_hash)
        found = self._issuer_index().get(key)
        if found is None:  # a CA created since the index was built?
            self._issuers = None
            found = self._issuer_index().get(key)
        return found

    def answer(self, request_der: bytes, *, ca: str | None = None) -> OcspAnswer:
        """Answer an OCSP request (never raises on bad input: errors are OCSP responses).

        Without a nonce the pre-signed response is returned (signed now and stored if there
        is none yet); with a nonce a response is signed for this request alone.
        """
        try:
            query = parse_ocsp_request(request_der)
        except OcspRequestError:
            return OcspAnswer(ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
        slug = self.find_issuer(query)
        if slug is None or (ca is not None and slug != ca):
            return OcspAnswer(ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED))
        ca_id = self.home._ca_ids.get(slug)
        if ca_id is None:
            self.home.authority(slug)
            ca_id = self.home._ca_ids[slug]
        serial = format(query.serial, "x")
        now = self.home.now()
        if query.nonce is None:
            with self.home.engine.connect() as conn:
                row = conn.execute(
                    _RESPONSE_BY_CERT, {"ca_id": ca_id, "serial": serial, "hash": query.hash_name}
                ).first()
            if row is not None and row.next_update > now:
                return OcspAnswer(row.der, row.next_update)
        with self.home.engine.connect() as conn:
            status = conn.execute(_STATUS_BY_SERIAL, {"ca_id": ca_id, "serial": serial}).first()
        entry = _entry(status) if status is not None else None
        responder = self.responder(slug)
        der, next_update = responder.respond(
            entry, serial=query.serial, hash_name=query.hash_name, at=now, nonce=query.nonce
        )
        if query.nonce is not None:
            return OcspAnswer(der)
        if entry is not None:
            self._store_responses(ca_id, [(serial, query.hash_name, der, now, next_update)])
        return OcspAnswer(der, next_update)

    def _store_responses(
        self, ca_id: int, responses: Sequence[tuple[str, str, bytes, datetime, datetime]]
    ) -> None:
        if not responses:
            return
        keys = [(serial, name) for serial, name, *_ in responses]
        # Another node may store the same answers at once: then its rows stand.
        with suppress(IntegrityError), self.home._tx() as conn:
            for serial, name in keys:
                conn.execute(
                    delete(t.ocsp_responses).where(
                        and_(
                            t.ocsp_responses.c.ca_id == ca_id,
                            t.ocsp_responses.c.serial == serial,
                            t.ocsp_responses.c.hash == name,
                        )
                    )
                )
            conn.execute(
                insert(t.ocsp_responses),
                [
                    {
                        "ca_id": ca_id,
                        "serial": serial,
                        "hash": name,
                        "der": der,
                        "this_update": this_update,
                        "next_update": next_update,
                    }
                    for serial, name, der, this_update, next_update in responses
                ],
            )

    def presign(self, ca: str, *, serials: Iterable[str] | None = None, chunk: int = 500) -> int:
        """Sign responses ahead of time for ``serials`` (default: every due certificate)."""
        home = self.home
        home.authority(ca)
        ca_id = home._ca_ids[ca]
        now = home.now()
        responder = self.responder(ca)
        due = now + self.policy.ocsp_renew_before
        with home.engine.connect() as conn:
            query = select(*_STATUS_COLUMNS).where(
                and_(t.certificates.c.ca_id == ca_id, t.certificates.c.not_after >= now)
            )
            if serials is not None:
                query = query.where(t.certificates.c.serial.in_(list(serials)))
            else:
                fresh = (
                    select(t.ocsp_responses.c.serial)
                    .where(
                        and_(
                            t.ocsp_responses.c.ca_id == ca_id,
                            t.ocsp_responses.c.next_update > due,
                        )
                    )
                    .group_by(t.ocsp_responses.c.serial)
                    .having(func.count() >= len(hash_names()))
                )
                query = query.where(t.certificates.c.serial.not_in(fresh))
            entries = [_entry(r) for r in conn.execute(query)]
        signed = 0
        for start in range(0, len(entries), chunk):
            batch = []
            for entry in entries[start : start + chunk]:
                for name in hash_names():
                    der, next_update = responder.respond(
                        entry, serial=entry.serial, hash_name=name, at=now
                    )
                    batch.append((format(entry.serial, "x"), name, der, now, next_update))
            self._store_responses(ca_id, batch)
            signed += len(batch)
        return signed

    def refresh(self) -> dict[str, int]:
        """What a node does periodically: due CRLs, due OCSP responses, for every CA."""
        crls = self.refresh_crls()
        responses = 0
        for info in self.home.cas():
            if info.state == "active":
                responses += self.presign(info.slug)
        return {"crls": len(crls), "ocsp_responses": responses}

    def export_ocsp(self, out: Path) -> int:
        """Write the pre-signed responses for a static HTTP server (RFC 5019 GET URLs).

        For every response, the file lives at ``OUT/<ca>/ocsp/<base64 of the request>``: the
        path a nonce-less GET request for that certificate names, as a server sees it after
        percent-decoding (a ``/`` in the base64 makes a folder; where the base64 ends in
        ``/``, the file is ``index.der`` in that folder). ``OUT/nginx.conf`` shows how to
        serve the folder with nginx.
        """
        written = 0
        locations = []
        for info in self.home.cas():
            if info.state != "active" or info.certificate is None:
                continue
            self.presign(info.slug)
            for serial, name, der in self._responses(info.slug):
                request = (
                    ocsp.OCSPRequestBuilder()
                    .add_certificate_by_hash(
                        *self.responder(info.slug).hashes[name],
                        int(serial, 16),
                        _HASH_CLASSES[name](),
                    )
                    .build()
                    .public_bytes(_DER)
                )
                segments = _b64_path(request)
                if segments[-1] == "":
                    segments[-1] = _INDEX
                target = out.joinpath(info.slug, "ocsp", *segments)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(der)
                written += 1
            locations.append(
                f"    location /pki/{info.slug}/ocsp/ {{\n"
                f"        alias {(out / info.slug / 'ocsp').resolve()}/;\n"
                f"        index {_INDEX};\n"
                "        default_type application/ocsp-response;\n"
                "    }\n"
            )
        out.mkdir(parents=True, exist_ok=True)
        (out / "nginx.conf").write_text(
            "# Include inside a server { } block; clients send RFC 5019 GET requests.\n"
            + "".join(locations)
        )
        return written

    def _responses(self, ca: str) -> Iterator[tuple[str, str, bytes]]:
        with self.home.engine.connect() as conn:
            ca_id = self.home._ca_id(conn, ca)
            for row in conn.execute(
                select(t.ocsp_responses.c.serial, t.ocsp_responses.c.hash, t.ocsp_responses.c.der)
                .where(t.ocsp_responses.c.ca_id == ca_id)
                .order_by(t.ocsp_responses.c.id)
            ):
                yield row.serial, row.hash, row.der


_DER = Encoding.DER
#: The file name of a response whose request's base64 ends in "/" (served as a folder index).
_INDEX = "index.der"
#: A TSA or TLS certificate is replaced when less than this is left.
_TSA_RENEW = timedelta(days=30)
_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}


def _names_hosts(certificate: x509.Certificate, hosts: Sequence[str]) -> bool:
    """True if a TLS certificate names every one of ``hosts``."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    named = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    named |= set(san.get_values_for_type(x509.DNSName))
    return set(hosts) <= named


def _b64_path(request_der: bytes) -> list[str]:
    """The request's base64 as path segments (a '/' in base64 splits it, as servers decode)."""
    return base64.b64encode(request_der).decode().split("/")


def _refusal(serial: str, status: CertStatus, new: CertStatus) -> str:
    if status is CertStatus.REVOKED:
        return f"certificate {serial} is revoked already; a revocation is final"
    if new is CertStatus.GOOD:
        return f"certificate {serial} is not on hold ({status}); only a held one can be resumed"
    if new is CertStatus.ON_HOLD:
        return f"certificate {serial} is {status}; only a good certificate can be suspended"
    return f"certificate {serial} is {status}"
