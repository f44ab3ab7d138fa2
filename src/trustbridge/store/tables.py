"""The database schema (SQLAlchemy Core). Migrations in ``migrations/versions`` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from trustbridge.store.types import UtcDateTime

__all__ = [
    "audit_events",
    "authorities",
    "certificates",
    "crls",
    "enrolment_tokens",
    "levels",
    "log_checkpoints",
    "log_cosignatures",
    "log_entries",
    "log_peer_checkpoints",
    "log_peers",
    "log_state",
    "metadata",
    "ocsp_responses",
    "provenance_statements",
    "requests",
    "schemes",
    "service_keys",
]

metadata = MetaData()

schemes = Table(
    "schemes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

levels = Table(
    "levels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scheme_id", Integer, ForeignKey("schemes.id"), nullable=False),
    Column("name", String(32), nullable=False),
    Column("oid", String(200), nullable=False, unique=True),
    Column("rank", Integer, nullable=False),
    UniqueConstraint("scheme_id", "name"),
)

authorities = Table(
    "authorities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("scheme_id", Integer, ForeignKey("schemes.id"), nullable=False),
    Column("parent_id", Integer, ForeignKey("authorities.id"), nullable=True),
    Column("is_root", Boolean, nullable=False),
    # 'active' once it holds a certificate; 'awaiting-certificate' while a parent in another
    # home has its CSR.
    Column("state", String(32), nullable=False),
    Column("certificate_der", LargeBinary, nullable=True),
    Column("csr_der", LargeBinary, nullable=True),
    # PEM certificates above this CA when its parent lives in another home.
    Column("chain_pem", Text, nullable=True),
    Column("key_store", String(16), nullable=False),
    Column("key_ref", Text, nullable=False),
    Column("key_type", String(16), nullable=False),
    Column("kinds", JSON, nullable=False),
    Column("level_oids", JSON, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("path_length", Integer, nullable=True),
    Column("name_constraints", JSON, nullable=False),
    Column("base_url", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Revocation bookkeeping: the last CRL number handed out, and a counter that every status
    # change increments (delta CRLs list the changes above their base's counter). Updating
    # this row serializes status changes and CRL issuance per CA, on SQLite and PostgreSQL.
    Column("crl_number", Integer, nullable=False, server_default=text("0")),
    Column("status_version", Integer, nullable=False, server_default=text("0")),
)

requests = Table(
    "requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("level_oid", String(200), nullable=False),
    Column("subject", JSON, nullable=False),
    Column("csr_der", LargeBinary, nullable=True),
    Column("public_key_der", LargeBinary, nullable=True),
    Column("key_fingerprint", String(64), nullable=True),
    # 'holder' (from a CSR), 'ca-generated' (machines at manufacture)
    Column("key_origin", String(16), nullable=False),
    Column("key_type", String(16), nullable=False),
    Column("lifetime_days", Integer, nullable=True),
    Column("batch_size", Integer, nullable=False, server_default=text("1")),
    Column("digest", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requested_by_display", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_by_display", Text, nullable=True),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("decision_rule", String(32), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("decision_payload", LargeBinary, nullable=True),
    Column("decision_signature", LargeBinary, nullable=True),
    Column("decision_certificate_der", LargeBinary, nullable=True),
    # The certificate this request renews or rekeys (certificates.id; no foreign key, since
    # certificates reference requests).
    Column("renewal_of", Integer, nullable=True),
    Index(
        "uq_requests_pending_key",
        "ca_id",
        "key_fingerprint",
        unique=True,
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
    # The officers' list of pending requests, oldest first (migration 0009).
    Index(
        "ix_requests_pending",
        "requested_at",
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
)

certificates = Table(
    "certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("serial", String(42), nullable=False),
    Column("request_id", String(36), ForeignKey("requests.id"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("level_oid", String(200), nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("key_fingerprint", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("der", LargeBinary, nullable=False),
    Column("key_origin", String(16), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("renewal_of", Integer, ForeignKey("certificates.id"), nullable=True),
    # Revocation (filled by the revocation issue): 'good', 'revoked', 'on-hold'.
    Column("status", String(16), nullable=False, server_default=text("'good'")),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    Column("invalidity_date", UtcDateTime, nullable=True),
    # The CA's status_version of the last status change (0: never changed).
    Column("status_version", Integer, nullable=False, server_default=text("0")),
    Column("status_changed_by", String(200), nullable=True),
    UniqueConstraint("ca_id", "serial", name="uq_certificates_ca_serial"),
    # Only certificates whose status changed: what a delta CRL looks for (status_version > n
    # for some n >= 0); the query states ``status_version > 0`` so that the index applies.
    Index(
        "ix_certificates_status_version",
        "ca_id",
        "status_version",
        sqlite_where=text("status_version > 0"),
        postgresql_where=text("status_version > 0"),
    ),
    Index("ix_certificates_key", "key_fingerprint"),
    # No index on holder: the search matches inside the name (LIKE '%...%').
)

enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("organization", String(200), nullable=False),
    Column("kinds", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("used_by_request", String(36), nullable=True),
)

crls = Table(
    "crls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    # A full CRL and a delta CRL issued together share their number (RFC 5280 5.2.3).
    Column("number", Integer, nullable=False),
    Column("delta", Boolean, nullable=False),
    # The full CRL a delta CRL builds on; NULL for a full CRL.
    Column("base_number", Integer, nullable=True),
    # The CA's status_version this CRL covers.
    Column("status_version", Integer, nullable=False),
    Column("this_update", UtcDateTime, nullable=False),
    Column("next_update", UtcDateTime, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("der", LargeBinary, nullable=False),
    UniqueConstraint("ca_id", "number", "delta", name="uq_crls_ca_number"),
)

service_keys = Table(
    "service_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    # 'ocsp' (the CA's delegated responder) or 'tsa'
    Column("service", String(16), nullable=False),
    Column("key_store", String(16), nullable=False),
    Column("key_ref", Text, nullable=False),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_service_keys_ca", "ca_id", "service"),
)

ocsp_responses = Table(
    "ocsp_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("serial", String(42), nullable=False),
    # CertID hash algorithm: 'sha1' or 'sha256'
    Column("hash", String(8), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("this_update", UtcDateTime, nullable=False),
    Column("next_update", UtcDateTime, nullable=False),
    UniqueConstraint("ca_id", "serial", "hash", name="uq_ocsp_responses_cert"),
    Index("ix_ocsp_responses_next_update", "next_update"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("actor_display", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_object", "object_type", "object_id"),
)

#: Nonces of signed API requests (RFC 9421), kept until the signature expires: a request
#: replayed to this node or to any other node on the same database is refused.
seen_nonces = Table(
    "seen_nonces",
    metadata,
    Column("key_id", String(80), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_seen_nonces_expires_at", "expires_at"),
)

#: Cross-certificates and self-issued rollover certificates of this home's CAs: those a CA
#: here issued to another domain's CA (``issued-by``, published in the CA's SIA ``issued.p7c``)
#: and those other domains issued to a CA here (``issued-to``, published beside its own
#: certificate in the AIA ``issuers.p7c``), so relying parties discover bridge paths.
cross_certificates = Table(
    "cross_certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ca_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("mappings", JSON, nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_cross_certificates_ca", "ca_id", "direction"),
)

#: Bitstring status lists this home publishes as a credential issuer (one per purpose and
#: number), with the last signed list credential served at ``/credentials/status/<name>``.
status_lists = Table(
    "status_lists",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("size", Integer, nullable=False),
    Column("bits", LargeBinary, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("signed", Text, nullable=True),
    Column("signed_at", UtcDateTime, nullable=True),
    Column("signed_until", UtcDateTime, nullable=True),
)

#: Credentials this home issued, with their status list positions.
issued_credentials = Table(
    "issued_credentials",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("format", String(16), nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("subject_name", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("criteria", JSON, nullable=False),
    Column("evidence", String(20), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("revocation_list", String(64), nullable=False),
    Column("revocation_index", Integer, nullable=False),
    Column("suspension_list", String(64), nullable=False),
    Column("suspension_index", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("changed_at", UtcDateTime, nullable=True),
    Column("token", Text, nullable=False),
    UniqueConstraint("revocation_list", "revocation_index"),
    UniqueConstraint("suspension_list", "suspension_index"),
)

#: Credentials this home holds (its wallet): verified when stored, presented to partners.
held_credentials = Table(
    "held_credentials",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("format", String(16), nullable=False),
    Column("issuer_id", Text, nullable=False),
    Column("issuer_name", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("criteria", JSON, nullable=False),
    Column("evidence", String(20), nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("token", Text, nullable=False),
)

#: First-contact sessions with partner nodes, as initiator or responder (``trustbridge.exchange``):
#: the step reached, what each side learned (in ``data``), and the contract once there is one.
exchange_sessions = Table(
    "exchange_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("partner_org", String(200), nullable=True),
    Column("partner_name", Text, nullable=True),
    Column("partner_url", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=True),
    Column("contract_id", String(200), nullable=True),
    Column("contract_pdf", LargeBinary, nullable=True),
    Column("data", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_exchange_sessions_partner", "partner_org", "contract_id"),
)

#: Each completed step of a session: the request it answered and the signed answer, so that a
#: repeated request (a retry after a crash) gets the same answer and a different one is refused.
exchange_steps = Table(
    "exchange_steps",
    metadata,
    Column("session_id", String(64), ForeignKey("exchange_sessions.id"), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("request_digest", String(64), nullable=False),
    Column("answer", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

#: Secure messages received (``in``) or sent (``out``), accepted or refused, with receipts.
exchange_messages = Table(
    "exchange_messages",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("direction", String(4), primary_key=True),
    #: The sending organization ("" where unknown): message ids are unique per sender only.
    Column("sender_org", String(200), primary_key=True),
    Column("session_id", String(64), nullable=True),
    Column("contract_id", String(200), nullable=True),
    Column("receiver_org", String(200), nullable=False),
    Column("sender", Text, nullable=True),
    Column("element", String(64), nullable=True),
    Column("purpose", String(64), nullable=True),
    Column("name", Text, nullable=True),
    Column("accepted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("policies", JSON, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("token_digest", String(64), nullable=False),
    Column("token", Text, nullable=False),
    Column("jws", Text, nullable=True),
    Column("receipt", Text, nullable=True),
    Index("ix_exchange_messages_at", "at"),
)

# -- transparency log and provenance ------------------------------------------------------------

#: One row: the log's size. Every append increments it in the appending transaction, so indexes
#: are dense and assigned in commit order, whatever process appends.
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", Integer, nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(48), nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    #: The leaf's data (canonical JSON); its RFC 9162 leaf hash is ``leaf_hash``.
    Column("data", LargeBinary, nullable=False),
    #: What the entry is about (a serial, a contract id, a component), for lookups.
    Column("subject", String(200), nullable=True),
    Column("at", UtcDateTime, nullable=False),
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    #: The signed note, exactly as signed (cosignatures are added in ``log_cosignatures``).
    Column("note", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

log_cosignatures = Table(
    "log_cosignatures",
    metadata,
    Column("size", Integer, ForeignKey("log_checkpoints.size"), primary_key=True),
    Column("witness", String(200), primary_key=True),
    Column("line", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

#: Other nodes' logs this node follows: as a monitor, as a witness, or as the origin of
#: provenance statements it imported. The newest checkpoint it verified, per origin.
log_peers = Table(
    "log_peers",
    metadata,
    Column("origin", String(200), primary_key=True),
    Column("vkey", Text, nullable=False),
    Column("url", Text, nullable=True),
    #: The organization that runs the log, where a signed description named it
    #: ({"name", "identifier"}): statements it logged must be that organization's.
    Column("organization", JSON, nullable=True),
    Column("size", Integer, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: Every checkpoint seen of a followed log, with the consistency proof from the one seen before
#: it: a chain of proofs from the first look to the newest, so that a receipt anchored at any
#: of them is checked against the newest one without asking the log again.
log_peer_checkpoints = Table(
    "log_peer_checkpoints",
    metadata,
    Column("origin", String(200), primary_key=True),
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("previous", Integer, nullable=False),
    Column("proof", JSON, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)

#: Provenance statements this node logged (its own or imported), by component.
provenance_statements = Table(
    "provenance_statements",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("component", String(200), nullable=False),
    Column("event", String(32), nullable=False),
    #: This node's log index of the statement.
    Column("idx", Integer, ForeignKey("log_entries.idx"), nullable=False),
    #: The log that first logged it (this node's origin, or a partner's) and its index there.
    Column("origin", String(200), nullable=False),
    Column("origin_idx", Integer, nullable=False),
    Column("bundle", Text, nullable=False),
    #: A partner log's receipt (checkpoint note and inclusion proof) for imported statements.
    Column("receipt", JSON, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    #: The digest of the statement it follows ("" for the first): one successor each.
    Column("previous", String(64), nullable=False),
    Index("ix_provenance_component", "component"),
    UniqueConstraint("component", "previous", name="uq_provenance_successor"),
)
