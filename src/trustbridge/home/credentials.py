"""A home as credential issuer and as holder.

As **issuer**, the home keeps one signing identity (an organization identity: the key, in a
passphrase-protected file, and its chain), issues trustworthiness credentials in ``vc+jwt`` or
``dc+sd-jwt``, gives each a random position in its revocation and its suspension status list,
and publishes those lists as signed ``BitstringStatusListCredential`` s at
``<base_url>/credentials/status/<name>``. Revoking, suspending and resuming flip a bit and
re-sign the list at once; the node re-signs a list before its ``validUntil`` comes near.

As **holder**, the home keeps a wallet of credentials about itself (verified when stored),
which it presents to partners.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from trustbridge._canonical import canonical_json
from trustbridge.credentials._jose import sign_jws, x5c_encode
from trustbridge.credentials.criteria import Catalogue, EvidenceKind
from trustbridge.credentials.formats import Format, issue_credential, present, unverified_payload
from trustbridge.credentials.model import Issuer, TrustCredential, Verdict, issuer_id_for
from trustbridge.credentials.package import make_package
from trustbridge.credentials.status import (
    MIN_LIST_BITS,
    BitstringStatusList,
    StatusEntry,
    StatusListCache,
    StatusPurpose,
    status_list_payload,
)
from trustbridge.credentials.verify import (
    CredentialVerifier,
    VerificationParams,
    organization_identifier_of,
    status_list_reader,
)
from trustbridge.errors import ConfigError, DuplicateError, InputError, NotFoundError, ReleaseError
from trustbridge.home.config import SecretSource
from trustbridge.home.records import local_principal
from trustbridge.ledger.entries import EntryKind
from trustbridge.pki.keys import (
    load_private_key_file,
    load_private_key_pem,
    write_private_key_file,
)
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.pki.release import Principal
from trustbridge.pki.signers import FileSigner, Signer
from trustbridge.store import tables as t
from trustbridge.trust.paths import Fetcher

if TYPE_CHECKING:
    from trustbridge.home.home import Home

__all__ = ["CredentialService", "HeldCredential", "IssuedCredential", "STATUS_PATH"]

#: Where a node serves its status lists (under its HTTP base URL).
STATUS_PATH = "/credentials/status"
_SLUG = "credential-issuer"
_KEY_FILE = "keys/credential-issuer.key.pem"
_CHAIN_FILE = "credentials/issuer-chain.pem"
#: How long a signed status list is valid, and when the node signs a fresh one.
LIST_VALIDITY = timedelta(days=1)
LIST_REFRESH = timedelta(hours=12)
#: How long a verifier may cache a status list (the W3C ``ttl``).
LIST_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCredential:
    id: str
    format: str
    subject_id: str
    subject_name: str
    holder: str
    criteria: tuple[str, ...]
    evidence: str
    issued_at: datetime
    valid_until: datetime
    state: str
    reason: str | None
    token: str


@dataclass(frozen=True)
class HeldCredential:
    id: str
    format: str
    issuer_id: str
    issuer_name: str
    subject_id: str
    criteria: tuple[str, ...]
    evidence: str
    valid_until: datetime
    stored_at: datetime
    source: str
    token: str


class CredentialService:
    """Issuing, revoking and publishing credentials; holding them in a wallet."""

    def __init__(self, home: Home) -> None:
        self.home = home

    # -- the issuer identity -------------------------------------------------------------------

    def set_issuer(
        self,
        key_pem: bytes,
        chain: Sequence[x509.Certificate],
        *,
        key_passphrase: bytes | None = None,
        secret: SecretSource,
        actor: Principal | None = None,
    ) -> x509.Certificate:
        """Make ``chain[0]`` (an organization identity) this home's credential issuer."""
        home = self.home
        if not chain:
            raise InputError("the issuer's chain is empty", hint="give its certificate first")
        leaf = chain[0]
        if subject_kind_of(leaf) is not SubjectKind.ORGANIZATION:
            raise InputError(
                f"{leaf.subject.rfc4514_string()} is not an organization identity",
                hint="credentials are issued with the organization's own identity",
            )
        if organization_identifier_of(leaf) is None:
            raise InputError(f"{leaf.subject.rfc4514_string()} has no organizationIdentifier")
        key = load_private_key_pem(key_pem, key_passphrase, source="the issuer key")
        if key.public_key() != leaf.public_key():
            raise InputError("the key does not belong to the issuer's certificate")
        if secret.env or secret.file:
            home.config = home.config.with_secret(_SLUG, secret)
            home.config.save(home.path)
        write_private_key_file(home.path / _KEY_FILE, key, home._secret(_SLUG))
        chain_path = home.path / _CHAIN_FILE
        chain_path.parent.mkdir(parents=True, exist_ok=True)
        chain_path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
        with home._tx() as conn:
            home._audit(
                conn,
                actor or local_principal(),
                "credential-issuer.set",
                "credential-issuer",
                issuer_id_for(organization_identifier_of(leaf) or ""),
                subject=leaf.subject.rfc4514_string(),
            )
        return leaf

    def issuer_chain(self) -> tuple[x509.Certificate, ...]:
        path = self.home.path / _CHAIN_FILE
        if not path.is_file():
            raise ConfigError(
                "this home has no credential issuer identity",
                hint="trustbridge credential issuer --key KEY.pem --chain CHAIN.pem",
            )
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))

    def issuer(self) -> Issuer:
        leaf = self.issuer_chain()[0]
        organization = organization_identifier_of(leaf) or ""
        names = leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        name = str(names[0].value) if names else leaf.subject.rfc4514_string()
        return Issuer(id=issuer_id_for(organization), name=name)

    def _signer(self) -> tuple[Signer, tuple[x509.Certificate, ...]]:
        chain = self.issuer_chain()
        key = load_private_key_file(self.home.path / _KEY_FILE, self.home._secret(_SLUG))
        return FileSigner(key, _KEY_FILE), chain

    # -- issuing -------------------------------------------------------------------------------

    def status_url(self, name: str) -> str:
        return f"{self.home.config.base_url}{STATUS_PATH}/{name}"

    def issue(
        self,
        credential: TrustCredential,
        *,
        format: Format,
        holder: x509.Certificate,
        catalogue: Catalogue | None = None,
        actor: Principal | None = None,
    ) -> str:
        """Check, number, sign and record ``credential``; returns the token.

        The issuer, the status entries and the validity are this home's: the draft's issuer is
        replaced by the home's issuer identity.
        """
        home = self.home
        catalogue = catalogue or Catalogue.default()
        issuer = self.issuer()
        kind = credential.evidence.kind
        for claim in credential.claims:
            criterion = catalogue.get(claim.criterion)
            criterion.check_value(claim.value)
            criterion.check_evidence(kind)
            criterion.check_element(credential.subject.element)
            if claim.characteristic is not criterion.characteristic:
                raise InputError(
                    f"claim {claim.criterion} serves {criterion.characteristic}, "
                    f"not {claim.characteristic}"
                )
        if kind is EvidenceKind.SELF_DECLARATION and issuer.id != issuer_id_for(
            credential.subject.organization
        ):
            raise InputError(
                f"a self-declaration about {credential.subject.name} can only be issued by "
                f"{credential.subject.organization} itself, not by {issuer.name}"
            )
        signer, chain = self._signer()
        at = home.now()
        with home._tx() as conn:
            positions = {purpose: self._allocate(conn, purpose, at) for purpose in StatusPurpose}
            entries = tuple(
                StatusEntry(self.status_url(name), index, purpose)
                for purpose, (name, index) in positions.items()
            )
            final = credential.model_copy(update={"issuer": issuer, "status": entries})
            final = TrustCredential.model_validate(final.model_dump())
            token = issue_credential(
                final,
                format=format,
                signer=signer,
                chain=chain,
                holder_key=holder.public_key(),
                issued_at=at,
            )
            revocation = positions[StatusPurpose.REVOCATION]
            suspension = positions[StatusPurpose.SUSPENSION]
            try:
                conn.execute(
                    insert(t.issued_credentials).values(
                        id=final.id,
                        format=str(format),
                        subject_id=final.subject.id,
                        subject_name=final.subject.name,
                        holder=holder.subject.rfc4514_string(),
                        criteria=list(final.criteria),
                        evidence=str(kind),
                        issued_at=at,
                        valid_until=final.valid_until,
                        revocation_list=revocation[0],
                        revocation_index=revocation[1],
                        suspension_list=suspension[0],
                        suspension_index=suspension[1],
                        state="valid",
                        token=token,
                    )
                )
            except IntegrityError as exc:
                raise DuplicateError(f"credential {final.id} was issued already") from exc
            home._audit(
                conn,
                actor or local_principal(),
                "credential.issue",
                "credential",
                final.id,
                subject=final.subject.id,
                criteria=list(final.criteria),
                evidence=str(kind),
                format=str(format),
            )
            home.log.append(
                EntryKind.CREDENTIAL_ISSUED,
                {
                    "id": final.id,
                    "format": str(format),
                    "subject": final.subject.id,
                    "criteria": list(final.criteria),
                    "evidence": str(kind),
                    "sha256": hashlib.sha256(token.encode()).hexdigest(),
                    "valid_until": final.valid_until.isoformat() if final.valid_until else None,
                },
                subject=final.id,
                conn=conn,
            )
        return token

    def _allocate(self, conn: Connection, purpose: StatusPurpose, at: datetime) -> tuple[str, int]:
        """A random unused position (the W3C spec's advice, for herd privacy)."""
        column = (
            t.issued_credentials.c.revocation_index
            if purpose is StatusPurpose.REVOCATION
            else t.issued_credentials.c.suspension_index
        )
        list_column = (
            t.issued_credentials.c.revocation_list
            if purpose is StatusPurpose.REVOCATION
            else t.issued_credentials.c.suspension_list
        )
        number = 1
        while True:
            name = f"{purpose.value}-{number}"
            self._ensure_list(conn, name, purpose, at)
            used = set(conn.execute(select(column).where(list_column == name)).scalars())
            if len(used) < MIN_LIST_BITS:
                break
            number += 1
        while True:
            index = secrets.randbelow(MIN_LIST_BITS)
            if index not in used:
                return name, index

    def _ensure_list(
        self, conn: Connection, name: str, purpose: StatusPurpose, at: datetime
    ) -> None:
        exists = conn.execute(
            select(t.status_lists.c.name).where(t.status_lists.c.name == name)
        ).first()
        if exists is None:
            conn.execute(
                insert(t.status_lists).values(
                    name=name,
                    purpose=purpose.value,
                    size=MIN_LIST_BITS,
                    bits=BitstringStatusList.new(MIN_LIST_BITS).encode().encode("ascii"),
                    changed_at=at,
                )
            )

    # -- status ----------------------------------------------------------------------------------

    def _row(self, conn: Connection, credential_id: str) -> Any:
        row = conn.execute(
            select(t.issued_credentials).where(t.issued_credentials.c.id == credential_id)
        ).first()
        if row is None:
            raise NotFoundError(
                f"no credential {credential_id} was issued by this home",
                hint="trustbridge credential list",
            )
        return row

    def _flip(
        self,
        conn: Connection,
        name: str,
        index: int,
        value: bool,
        at: datetime,
    ) -> None:
        row = conn.execute(select(t.status_lists).where(t.status_lists.c.name == name)).one()
        bits = BitstringStatusList.decode(bytes(row.bits).decode("ascii"))
        bits.set(index, value)
        conn.execute(
            update(t.status_lists)
            .where(t.status_lists.c.name == name)
            .values(bits=bits.encode().encode("ascii"), changed_at=at, signed=None)
        )

    def change_status(
        self,
        credential_id: str,
        action: str,
        *,
        reason: str = "",
        actor: Principal | None = None,
    ) -> IssuedCredential:
        """``revoke`` (final), ``suspend`` or ``resume`` a credential this home issued."""
        home = self.home
        at = home.now()
        with home._tx() as conn:
            row = self._row(conn, credential_id)
            state = row.state
            if state == "revoked":
                raise ReleaseError(f"credential {credential_id} is revoked already (final)")
            if action == "revoke":
                self._flip(conn, row.revocation_list, row.revocation_index, True, at)
                new_state = "revoked"
            elif action == "suspend":
                if state == "suspended":
                    raise ReleaseError(f"credential {credential_id} is suspended already")
                self._flip(conn, row.suspension_list, row.suspension_index, True, at)
                new_state = "suspended"
            elif action == "resume":
                if state != "suspended":
                    raise ReleaseError(f"credential {credential_id} is not suspended")
                self._flip(conn, row.suspension_list, row.suspension_index, False, at)
                new_state = "valid"
            else:
                raise InputError(f"unknown status action {action!r}")
            conn.execute(
                update(t.issued_credentials)
                .where(t.issued_credentials.c.id == credential_id)
                .values(state=new_state, reason=reason or None, changed_at=at)
            )
            home._audit(
                conn,
                actor or local_principal(),
                f"credential.{action}",
                "credential",
                credential_id,
                reason=reason,
            )
            home.log.append(
                EntryKind.CREDENTIAL_STATUS,
                {"id": credential_id, "state": new_state, "from": state, "reason": reason},
                subject=credential_id,
                conn=conn,
            )
        for name in {row.revocation_list, row.suspension_list}:
            self.signed_status_list(name)
        return self.issued(credential_id)

    def signed_status_list(self, name: str) -> bytes:
        """The current signed list credential; signed anew when changed or near its end."""
        home = self.home
        at = home.now()
        with home._tx() as conn:
            row = conn.execute(select(t.status_lists).where(t.status_lists.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"no status list {name!r} here")
            if row.signed and row.signed_until and at < row.signed_until - LIST_REFRESH:
                return str(row.signed).encode("ascii")
            signer, chain = self._signer()
            issuer = self.issuer()
            payload = status_list_payload(
                url=self.status_url(name),
                issuer=issuer.id,
                purpose=StatusPurpose(row.purpose),
                bits=BitstringStatusList.decode(bytes(row.bits).decode("ascii")),
                valid_from=at,
                valid_until=at + LIST_VALIDITY,
                ttl=LIST_TTL,
            )
            header = {
                "typ": "vc+jwt",
                "x5c": x5c_encode(chain),
            }
            token = sign_jws(header, canonical_json(payload), signer)
            conn.execute(
                update(t.status_lists)
                .where(t.status_lists.c.name == name)
                .values(signed=token, signed_at=at, signed_until=at + LIST_VALIDITY)
            )
        return token.encode("ascii")

    # -- reading ---------------------------------------------------------------------------------

    def issued(self, credential_id: str) -> IssuedCredential:
        with self.home._tx() as conn:
            return _issued(self._row(conn, credential_id))

    def issued_list(self) -> list[IssuedCredential]:
        with self.home._tx() as conn:
            rows = conn.execute(
                select(t.issued_credentials).order_by(t.issued_credentials.c.issued_at)
            ).all()
        return [_issued(r) for r in rows]

    # -- verifying -------------------------------------------------------------------------------

    def verifier(
        self, *, fetcher: Fetcher | None = None, params: VerificationParams | None = None
    ) -> CredentialVerifier:
        """A verifier with this home's trust: its resolver, accepted lists, HTTP status lists."""
        fetcher = fetcher if fetcher is not None else self.home.fetcher()
        resolver = self.home.trust.resolver(fetcher=fetcher)
        return CredentialVerifier(
            resolver,
            trust_lists=resolver.config.trust_lists,
            status=StatusListCache(fetcher.fetch, status_list_reader(resolver)),
            params=params,
        )

    # -- the wallet ------------------------------------------------------------------------------

    def store(
        self,
        token: str,
        verify: Callable[[str], Verdict],
        *,
        source: str,
        actor: Principal | None = None,
    ) -> HeldCredential:
        """Verify ``token`` (with the home's verifier) and keep it in the wallet."""
        verdict = verify(token)
        credential = verdict.credential
        home = self.home
        at = home.now()
        with home._tx() as conn:
            conn.execute(
                t.held_credentials.delete().where(t.held_credentials.c.id == credential.id)
            )
            conn.execute(
                insert(t.held_credentials).values(
                    id=credential.id,
                    format=verdict.format,
                    issuer_id=credential.issuer.id,
                    issuer_name=credential.issuer.name,
                    subject_id=credential.subject.id,
                    criteria=list(credential.criteria),
                    evidence=str(credential.evidence.kind),
                    valid_until=credential.valid_until,
                    stored_at=at,
                    source=source,
                    token=token.strip(),
                )
            )
            home._audit(
                conn,
                actor or local_principal(),
                "credential.store",
                "credential",
                credential.id,
                issuer=credential.issuer.id,
                source=source,
            )
        return self.held(credential.id)

    def package(
        self,
        *,
        audience: str,
        nonce: str,
        credential_ids: Sequence[str] | None = None,
        suppliers: Sequence[str] = (),
        disclose: dict[str, Sequence[str]] | None = None,
    ) -> str:
        """Present the wallet's credentials (all, or ``credential_ids``) to ``audience`` with its
        ``nonce``, in one package signed with this home's organization identity.

        ``suppliers`` are the packages this organization's own suppliers made for the same
        challenge; ``disclose`` names, per credential id, what an SD-JWT reveals (all else).
        """
        held = self.held_list()
        if credential_ids is not None:
            known = {h.id: h for h in held}
            missing = [c for c in credential_ids if c not in known]
            if missing:
                raise NotFoundError(f"no credential {missing[0]} in this home's wallet")
            held = [known[c] for c in credential_ids]
        if not held and not suppliers:
            raise InputError(
                "the wallet holds no credentials to present",
                hint="trustbridge credential store FILE",
            )
        signer, chain = self._signer()
        at = self.home.now()
        chosen = disclose or {}
        presentations = [
            present(
                h.token,
                holder=signer,
                audience=audience,
                nonce=nonce,
                issued_at=at,
                disclose=chosen.get(h.id),
            )
            for h in held
        ]
        return make_package(
            presentations,
            signer=signer,
            chain=chain,
            audience=audience,
            nonce=nonce,
            issued_at=at,
            suppliers=suppliers,
        )

    def held(self, credential_id: str) -> HeldCredential:
        with self.home._tx() as conn:
            row = conn.execute(
                select(t.held_credentials).where(t.held_credentials.c.id == credential_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no credential {credential_id} in this home's wallet")
        return _held(row)

    def held_list(self, *, subject_id: str | None = None) -> list[HeldCredential]:
        query = select(t.held_credentials).order_by(t.held_credentials.c.stored_at)
        if subject_id is not None:
            query = query.where(t.held_credentials.c.subject_id == subject_id)
        with self.home._tx() as conn:
            return [_held(r) for r in conn.execute(query).all()]


def _issued(row: Any) -> IssuedCredential:
    return IssuedCredential(
        id=row.id,
        format=row.format,
        subject_id=row.subject_id,
        subject_name=row.subject_name,
        holder=row.holder,
        criteria=tuple(row.criteria),
        evidence=row.evidence,
        issued_at=row.issued_at,
        valid_until=row.valid_until,
        state=row.state,
        reason=row.reason,
        token=row.token,
    )


def _held(row: Any) -> HeldCredential:
    return HeldCredential(
        id=row.id,
        format=row.format,
        issuer_id=row.issuer_id,
        issuer_name=row.issuer_name,
        subject_id=row.subject_id,
        criteria=tuple(row.criteria),
        evidence=row.evidence,
        valid_until=row.valid_until,
        stored_at=row.stored_at,
        source=row.source,
        token=row.token,
    )


def credential_payload(token: str) -> dict[str, Any]:
    """The unverified payload (for listings)."""
    return unverified_payload(token)
