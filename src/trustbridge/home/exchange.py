"""A company node's side of first contact, contracts and secure messages (the persisted part).

The home keeps the organization's exchange setup (its key-agreement key, its node's TLS
identity, the requirement policy it applies to newcomers, its TSA), every session with a
partner node and each step's signed answer (so a retry after a crash gets the same answer and a
changed request is refused), the contracts, and every message received or sent with its
receipt. The HTTP side is in :mod:`trustbridge.node.partner` (responder) and
:mod:`trustbridge.node.onboard` (initiator).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from trustbridge.assessment import RequirementPolicy
from trustbridge.assessment.access import (
    AccessDecision,
    AccessPolicies,
    AccessRequest,
    Action,
    Entity,
    EntityRef,
    EntityStore,
    EntityType,
    entity_from_data,
    entity_from_identity,
)
from trustbridge.assessment.engine import assess_package
from trustbridge.assessment.policy import shipped_policy
from trustbridge.credentials._jose import decode_jwt, verify_jws, x5c_of
from trustbridge.credentials.errors import CredentialError
from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import (
    AuthenticationError,
    ConfigError,
    InputError,
    NotFoundError,
    ValidationError,
)
from trustbridge.exchange.contract import (
    ContractReport,
    ContractTerms,
    contract_terms,
    sign_contract,
    verify_contract,
)
from trustbridge.exchange.protocol import (
    FORMATS,
    Challenge,
    ExchangeError,
    Step,
    StepOrderError,
    negotiate,
    offer_digest,
)
from trustbridge.home.delivery import write_private
from trustbridge.home.records import local_principal
from trustbridge.ledger.entries import EntryKind
from trustbridge.pki.keys import load_private_key_file, load_private_key_pem, write_private_key_file
from trustbridge.pki.profiles import Purpose, SubjectKind, subject_kind_of
from trustbridge.pki.release import Principal
from trustbridge.pki.signers import Signer
from trustbridge.store import tables as t
from trustbridge.trust._jws import b64url_decode
from trustbridge.trust.paths import Fetcher, FetchError
from trustbridge.trust.resolver import Resolution, TrustResolver

if TYPE_CHECKING:
    from trustbridge.exchange.messages import OpenedMessage
    from trustbridge.home.home import Home

__all__ = [
    "ExchangeService",
    "ExchangeSettings",
    "Party",
    "SessionInfo",
    "request_digest",
]

_FOLDER = "exchange"
_SETTINGS = "exchange/settings.json"
_AGREEMENT_KEY = "exchange/agreement.key.pem"
_AGREEMENT_CHAIN = "exchange/agreement-chain.pem"
_TLS_KEY = "exchange/tls.key.pem"
_TLS_CHAIN = "exchange/tls-chain.pem"
#: The organization's exchange keys are protected by the same secret as its identity key.
_SECRET_SLUG = "credential-issuer"  # noqa: S105 - a secret's name
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
#: States a session ends in.
FINAL_STATES = frozenset({"concluded", "rejected", "failed"})


def request_digest(body: Any) -> str:
    """SHA-256 (hex) of a request body's canonical JSON: what makes a retry the same request."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ExchangeSettings:
    """What the organization applies to newcomers, and where it gets its timestamps."""

    #: The requirement policy (a shipped name or a file) partners are assessed against.
    policy: str
    #: The lowest reference level of a partner's organization identity to talk to at all.
    min_level: str = "itg-loa2"
    #: The TSA that timestamps this organization's contract signatures (RFC 3161 over HTTP).
    tsa: str | None = None
    #: The formats this node speaks (a subset of :data:`FORMATS`, strongest first).
    formats: dict[str, list[str]] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"policy": self.policy, "min_level": self.min_level}
        if self.tsa:
            data["tsa"] = self.tsa
        if self.formats is not None:
            data["formats"] = self.formats
        return data

    @classmethod
    def from_json(cls, data: Any, source: str) -> ExchangeSettings:
        if not isinstance(data, dict) or not isinstance(data.get("policy"), str):
            raise ConfigError(f"{source}: not exchange settings (no policy)")
        formats = data.get("formats")
        return cls(
            policy=data["policy"],
            min_level=str(data.get("min_level", "itg-loa2")),
            tsa=data.get("tsa"),
            formats=formats if isinstance(formats, dict) else None,
        )

    def supported(self) -> dict[str, list[str]]:
        own = self.formats or {k: list(v) for k, v in FORMATS.items()}
        # Never more than this implementation speaks.
        return {k: [f for f in own.get(k, []) if f in FORMATS[k]] for k in FORMATS}


@dataclass(frozen=True)
class Party:
    """A partner as its identity resolved: organization, name, route and reference level."""

    organization: str
    name: str
    route: str
    reference_level: str | None
    fingerprint: str
    kind: str
    #: The scheme its identity is from (its holder level's), where known.
    scheme: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "organization": self.organization,
            "name": self.name,
            "route": self.route,
            "reference_level": self.reference_level,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
        }
        if self.scheme is not None:
            data["scheme"] = self.scheme
        return data

    @classmethod
    def of(cls, certificate: x509.Certificate, resolution: Resolution) -> Party:
        organization = organization_identifier_of(certificate)
        if organization is None:
            raise ExchangeError(
                f"{certificate.subject.rfc4514_string()} names no organization identifier"
            )
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        name = str(names[0].value) if names else certificate.subject.rfc4514_string()
        kind = subject_kind_of(certificate)
        level = resolution.reference_level
        return cls(
            organization=organization,
            name=name,
            route=str(resolution.route),
            reference_level=level.name if level is not None else None,
            fingerprint=certificate.fingerprint(_sha256()).hex(),
            kind=kind.value if kind is not None else "unknown",
            scheme=resolution.holder_level.scheme,
        )


def _sha256() -> hashes.SHA256:
    return hashes.SHA256()


@dataclass(frozen=True)
class SessionInfo:
    id: str
    role: str
    partner_org: str | None
    partner_name: str | None
    partner_url: str
    state: str
    reason: str | None
    contract_id: str | None
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    steps: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "partner": {"organization": self.partner_org, "name": self.partner_name},
            "partner_url": self.partner_url,
            "state": self.state,
            "reason": self.reason,
            "contract": self.contract_id,
            "steps": list(self.steps),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _principal(party: Party) -> Principal:
    return Principal("identity", party.fingerprint, f"{party.name} ({party.organization})")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_pdf(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) > 40 * 1024 * 1024:
        raise InputError(f"{what} is not a base64 PDF of acceptable size")
    try:
        pdf = base64.b64decode(value, validate=True)
    except ValueError:
        raise InputError(f"{what} is not valid base64") from None
    if not pdf.startswith(b"%PDF-"):
        raise InputError(f"{what} is not a PDF")
    return pdf


class ExchangeService:
    """Sessions, contracts and messages of one company home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._messages_resolver: TrustResolver | None = None
        self._access: AccessPolicies | None = None
        self._terms_cache: dict[tuple[str, datetime], ContractTerms] = {}
        # Keys are decrypted once per process (a node answers many requests with them).
        self._identity: tuple[Signer, tuple[x509.Certificate, ...]] | None = None
        self._agreement: tuple[ec.EllipticCurvePrivateKey, tuple[x509.Certificate, ...]] | None = (
            None
        )
        self._settings: tuple[float, ExchangeSettings] | None = None
        self._stores: dict[tuple[str, datetime, bytes], tuple[EntityStore, Entity]] = {}

    # -- setup -----------------------------------------------------------------------------------

    def configure(
        self,
        settings: ExchangeSettings,
        *,
        agreement_key: bytes | None = None,
        agreement_chain: Sequence[x509.Certificate] = (),
        tls_key: bytes | None = None,
        tls_chain: Sequence[x509.Certificate] = (),
        key_passphrase: bytes | None = None,
    ) -> None:
        """Set the exchange settings and, where given, the key-agreement and TLS identities."""
        home = self.home
        org_chain = home.credentials.issuer_chain()  # the organization identity comes first
        organization = organization_identifier_of(org_chain[0])
        self._policy_of(settings.policy)  # refuse a policy that does not load
        negotiate(settings.supported())  # refuse settings without a format in some category
        secret = home._secret(_SECRET_SLUG)
        folder = home.path / _FOLDER
        folder.mkdir(mode=0o700, exist_ok=True)
        for key_pem, chain, key_file, chain_file, what in (
            (agreement_key, agreement_chain, _AGREEMENT_KEY, _AGREEMENT_CHAIN, "key-agreement"),
            (tls_key, tls_chain, _TLS_KEY, _TLS_CHAIN, "TLS"),
        ):
            if key_pem is None:
                continue
            if not chain:
                raise InputError(f"the {what} identity needs its certificate chain")
            leaf = chain[0]
            key = load_private_key_pem(key_pem, key_passphrase, source=f"the {what} key")
            if key.public_key() != leaf.public_key():
                raise InputError(f"the {what} key does not belong to its certificate")
            if organization_identifier_of(leaf) != organization:
                raise InputError(
                    f"the {what} certificate {leaf.subject.rfc4514_string()} belongs to "
                    f"{organization_identifier_of(leaf)}, not to {organization}"
                )
            if what == "key-agreement":
                usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
                if not usage.key_agreement or not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise InputError(
                        f"{leaf.subject.rfc4514_string()} is not a key-agreement certificate",
                        hint=f"issue the organization a {Purpose.KEY_AGREEMENT.value} identity",
                    )
            write_private_key_file(home.path / key_file, key, secret)
            (home.path / chain_file).write_bytes(
                b"".join(c.public_bytes(Encoding.PEM) for c in chain)
            )
        write_private(
            home.path / _SETTINGS, json.dumps(settings.to_json(), indent=2).encode() + b"\n"
        )
        self._identity = self._agreement = self._settings = None
        with home._tx() as conn:
            home._audit(
                conn,
                local_principal(),
                "exchange.configure",
                "exchange",
                organization or "",
                **settings.to_json(),
            )

    @property
    def configured(self) -> bool:
        return (self.home.path / _SETTINGS).is_file()

    def settings(self) -> ExchangeSettings:
        path = self.home.path / _SETTINGS
        try:
            stamp = path.stat().st_mtime
        except OSError:
            stamp = -1.0
        if self._settings is not None and self._settings[0] == stamp:
            return self._settings[1]
        if not path.is_file():
            raise ConfigError(
                "this home is not set up for partner exchange",
                hint="trustbridge exchange setup --policy NAME [--agreement-key ...] "
                "[--tls-key ...]",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        settings = ExchangeSettings.from_json(data, str(path))
        self._settings = (stamp, settings)
        return settings

    def _policy_of(self, text: str) -> RequirementPolicy:
        path = Path(text)
        if not (path.exists() or "/" in text or text.endswith((".yaml", ".yml"))):
            path = shipped_policy(text)
        elif not path.is_absolute():
            path = self.home.path / path
        return RequirementPolicy.load(path)

    def policy(self) -> RequirementPolicy:
        return self._policy_of(self.settings().policy)

    def identity(self) -> tuple[Signer, tuple[x509.Certificate, ...]]:
        """The organization identity that signs requests, answers and packages."""
        if self._identity is None:
            self._identity = self.home.credentials._signer()
        return self._identity

    def organization(self) -> str:
        return organization_identifier_of(self.home.credentials.issuer_chain()[0]) or ""

    def organization_name(self) -> str:
        return self.home.credentials.issuer().name

    def own_entity_data(self) -> dict[str, Any]:
        """This organization as a Cedar entity (plain data)."""
        leaf = self.home.credentials.issuer_chain()[0]
        return {
            "type": "Organization",
            "id": self.organization(),
            "name": self.organization_name(),
            "country": _country(leaf),
        }

    def _chain(self, rel: str, what: str) -> tuple[x509.Certificate, ...]:
        path = self.home.path / rel
        if not path.is_file():
            raise ConfigError(
                f"this home has no {what} identity for partner exchange",
                hint="trustbridge exchange setup --agreement-key/--tls-key KEY.pem ...",
            )
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))

    def agreement(self) -> tuple[ec.EllipticCurvePrivateKey, tuple[x509.Certificate, ...]]:
        if self._agreement is None:
            self._agreement = self._load_agreement()
        return self._agreement

    def _load_agreement(self) -> tuple[ec.EllipticCurvePrivateKey, tuple[x509.Certificate, ...]]:
        chain = self._chain(_AGREEMENT_CHAIN, "key-agreement")
        key = load_private_key_file(
            self.home.path / _AGREEMENT_KEY, self.home._secret(_SECRET_SLUG)
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("the key-agreement key is not an EC key")
        return key, chain

    def tls(self) -> tuple[Path, Path, str] | None:
        """The node's TLS chain file, key file and key passphrase, where set up."""
        chain, key = self.home.path / _TLS_CHAIN, self.home.path / _TLS_KEY
        if not chain.is_file() or not key.is_file():
            return None
        return chain, key, self.home._secret(_SECRET_SLUG).decode()

    def tls_certificate(self) -> x509.Certificate | None:
        files = self.tls()
        if files is None:
            return None
        return x509.load_pem_x509_certificates(files[0].read_bytes())[0]

    # -- trust -----------------------------------------------------------------------------------

    def resolver(self, *, cached: bool = False) -> TrustResolver:
        """A resolver with this home's trust. Session steps resolve afresh (a revocation shows
        at once); messages use one kept by the node, whose answers hold until the CRLs and
        lists they rest on are due (the resolver's own cache)."""
        if not cached:
            return self.home.trust.resolver()
        if self._messages_resolver is None:
            self._messages_resolver = self.home.trust.resolver()
        return self._messages_resolver

    def resolve_party(
        self,
        chain: Sequence[x509.Certificate],
        *,
        kinds: frozenset[SubjectKind] = frozenset({SubjectKind.ORGANIZATION}),
        resolver: TrustResolver | None = None,
        what: str = "the partner",
    ) -> tuple[Party, Resolution]:
        """Resolve a partner's identity; refuse it below the newcomer level or of another kind."""
        if not chain:
            raise ExchangeError(f"{what} presented no certificate")
        leaf = chain[0]
        kind = subject_kind_of(leaf)
        if kind not in kinds:
            raise ExchangeError(
                f"{what} signed with {leaf.subject.rfc4514_string()}, a "
                f"{kind.value if kind else 'non-trustbridge'} identity; expected "
                + " or ".join(sorted(k.value for k in kinds))
            )
        settings = self.settings()
        resolver = resolver or self.resolver()
        try:
            resolution = resolver.resolve(
                leaf, at=self.home.now(), extra=chain[1:], min_level=settings.min_level
            )
        except ValidationError as exc:
            raise ExchangeError(
                f"{what} ({leaf.subject.rfc4514_string()}) is not trusted: {exc.message}",
                hint=exc.hint,
            ) from None
        return Party.of(leaf, resolution), resolution

    # -- sessions ----------------------------------------------------------------------------

    def _session_row(self, conn: Connection, session_id: str) -> Any:
        return conn.execute(
            select(t.exchange_sessions).where(t.exchange_sessions.c.id == session_id)
        ).first()

    def session(self, session_id: str) -> SessionInfo:
        with self.home._tx() as conn:
            row = self._session_row(conn, session_id)
            if row is None:
                raise NotFoundError(f"no exchange session {session_id} in this home")
            steps = conn.execute(
                select(t.exchange_steps.c.step).where(t.exchange_steps.c.session_id == session_id)
            ).scalars()
            done = sorted(steps, key=lambda s: Step(s).position)
        return _session(row, tuple(done))

    def sessions(self) -> list[SessionInfo]:
        with self.home._tx() as conn:
            rows = conn.execute(
                select(t.exchange_sessions).order_by(t.exchange_sessions.c.created_at)
            ).all()
            steps: dict[str, list[str]] = {}
            for sid, step in conn.execute(
                select(t.exchange_steps.c.session_id, t.exchange_steps.c.step)
            ):
                steps.setdefault(sid, []).append(step)
        return [
            _session(r, tuple(sorted(steps.get(r.id, []), key=lambda s: Step(s).position)))
            for r in rows
        ]

    def create_session(
        self, session_id: str, *, role: str, partner_url: str, data: dict[str, Any]
    ) -> None:
        if not _SESSION_ID.match(session_id):
            raise InputError(f"session id {session_id!r} must be 16 to 64 base64url characters")
        now = self.home.now()
        with self.home._tx() as conn:
            conn.execute(
                insert(t.exchange_sessions).values(
                    id=session_id,
                    role=role,
                    partner_url=partner_url,
                    state="new",
                    data=data,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.home._audit(
                conn,
                local_principal(),
                "exchange.session-open",
                "session",
                session_id,
                role=role,
                partner=partner_url,
            )

    def update_session(self, session_id: str, **values: Any) -> None:
        values["updated_at"] = self.home.now()
        with self.home._tx() as conn:
            conn.execute(
                update(t.exchange_sessions)
                .where(t.exchange_sessions.c.id == session_id)
                .values(**values)
            )

    def step_answer(self, session_id: str, step: Step) -> tuple[str, str, dict[str, Any]] | None:
        """A completed step's request digest, signed answer and data."""
        with self.home._tx() as conn:
            row = conn.execute(
                select(t.exchange_steps).where(
                    t.exchange_steps.c.session_id == session_id, t.exchange_steps.c.step == step
                )
            ).first()
        return None if row is None else (row.request_digest, row.answer, dict(row.data))

    def record_step(
        self,
        session_id: str,
        step: Step,
        *,
        digest: str,
        answer: str,
        data: dict[str, Any],
        session: dict[str, Any] | None = None,
        actor: Principal | None = None,
        **audit: Any,
    ) -> None:
        """Store a completed step (and session changes) in one transaction, audited."""
        now = self.home.now()
        with self.home._tx() as conn:
            conn.execute(
                insert(t.exchange_steps).values(
                    session_id=session_id,
                    step=str(step),
                    request_digest=digest,
                    answer=answer,
                    data=data,
                    at=now,
                )
            )
            if session:
                conn.execute(
                    update(t.exchange_sessions)
                    .where(t.exchange_sessions.c.id == session_id)
                    .values(updated_at=now, **session)
                )
                if session.get("state") == "concluded" and session.get("contract_pdf"):
                    pdf = session["contract_pdf"]
                    contract = conn.execute(
                        select(t.exchange_sessions.c.contract_id).where(
                            t.exchange_sessions.c.id == session_id
                        )
                    ).scalar_one()
                    self.home.log.append(
                        EntryKind.CONTRACT,
                        {
                            "contract": contract,
                            "session": session_id,
                            "sha256": hashlib.sha256(pdf).hexdigest(),
                            "bytes": len(pdf),
                        },
                        subject=contract,
                        conn=conn,
                    )
            self.home._audit(
                conn,
                actor or local_principal(),
                f"exchange.{step}",
                "session",
                session_id,
                **audit,
            )

    # -- responder ---------------------------------------------------------------------------

    def _responder_session(self, session_id: str, caller: Party, step: Step) -> SessionInfo:
        info = self.session(session_id)
        if info.role != "responder" or info.partner_org != caller.organization:
            raise NotFoundError(f"no session {session_id} with {caller.organization}")
        if info.state in FINAL_STATES and step is not Step.CONCLUDE:
            raise StepOrderError(
                f"session {session_id} is {info.state}"
                + (f" ({info.reason})" if info.reason else "")
                + f": no {step} step any more"
            )
        previous = step.previous
        if previous is not None and previous is not Step.DISCOVER and previous not in info.steps:
            raise StepOrderError(
                f"step {step} of session {session_id} came before step {previous}",
                hint="steps go: " + " -> ".join(s.value for s in Step if s is not Step.DISCOVER),
            )
        return info

    def _begin(
        self, caller: Party, session_id: str, step: Step, body: Any
    ) -> tuple[SessionInfo, str, dict[str, Any] | None]:
        """A responder step's session (checked: the caller's, in order), the request's digest,
        and the stored answer where this very request was answered before."""
        info = self._responder_session(session_id, caller, step)
        digest = request_digest(body)
        return info, digest, self._replayed(session_id, step, digest)

    def _replayed(self, session_id: str, step: Step, digest: str) -> dict[str, Any] | None:
        """The stored answer of a repeated step; a different request for a done step fails."""
        done = self.step_answer(session_id, step)
        if done is None:
            return None
        if done[0] != digest:
            raise StepOrderError(
                f"step {step} of session {session_id} is done; a different request for it is "
                "refused (replayed or reordered)"
            )
        return done[2]

    def hello(self, caller: Party, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InputError("the hello body must be an object")
        session_id = body.get("session")
        if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
            raise InputError("the hello names no valid session id (16-64 base64url characters)")
        digest = request_digest(body)
        try:
            existing = self.session(session_id)
        except NotFoundError:
            existing = None
        if existing is not None:
            if existing.role != "responder" or existing.partner_org != caller.organization:
                raise StepOrderError(f"session id {session_id} is taken")
            replay = self._replayed(session_id, Step.HELLO, digest)
            if replay is not None:
                return replay
        offer = body.get("offer")
        settings = self.settings()
        selected = negotiate(offer if isinstance(offer, dict) else {}, settings.supported())
        node = body.get("node")
        if not isinstance(node, str) or not node.startswith("https://"):
            raise InputError("the hello names no https:// node URL of the initiator")
        at = self.home.now()
        challenge = Challenge.issue(self.organization(), at)
        answer = {
            "session": session_id,
            "selected": selected,
            "offer_digest": offer_digest(offer if isinstance(offer, dict) else {}),
            "challenge": challenge.to_json(),
            "policy": self.policy().id,
        }
        if existing is None:
            self.create_session(session_id, role="responder", partner_url=node, data={})
        self.record_step(
            session_id,
            Step.HELLO,
            digest=digest,
            answer="",
            data=answer,
            session={
                "state": "opened",
                "partner_org": caller.organization,
                "partner_name": caller.name,
                "data": {
                    "partner": caller.to_json(),
                    "offer": offer,
                    "selected": selected,
                    "challenge": challenge.to_json(),
                },
            },
            actor=_principal(caller),
            partner=caller.organization,
            route=caller.route,
            reference_level=caller.reference_level,
        )
        return answer

    def presentation(self, caller: Party, session_id: str, body: Any) -> dict[str, Any]:
        _, digest, replay = self._begin(caller, session_id, Step.PRESENTATION, body)
        if replay is not None:
            return replay
        challenge = Challenge.from_json(body.get("challenge") if isinstance(body, dict) else None)
        if challenge.audience != caller.organization:
            raise ExchangeError(
                f"the challenge's audience {challenge.audience!r} is not the caller "
                f"{caller.organization}"
            )
        challenge.check_open(self.home.now())
        package = self.home.credentials.package(audience=challenge.audience, nonce=challenge.nonce)
        answer = {"package": package}
        self.record_step(
            session_id,
            Step.PRESENTATION,
            digest=digest,
            answer="",
            data=answer,
            session={"state": "presented"},
            actor=_principal(caller),
            nonce=challenge.nonce,
        )
        return answer

    def assess(
        self,
        package: str,
        *,
        challenge: Challenge,
        partner: Party,
        source: str,
        policy: RequirementPolicy | None = None,
    ) -> dict[str, Any]:
        """Open a partner's package for our challenge and assess it with ``policy`` (default:
        the node's configured policy)."""
        policy = policy if policy is not None else self.policy()
        at = self.home.now()
        challenge.check_open(at)
        opened, result = assess_package(
            policy,
            package,
            verifier=self.home.credentials.verifier(),
            at=at,
            audience=challenge.audience,
            nonce=challenge.nonce,
            assessor=self.organization_name(),
            source=source,
        )
        if opened.organization != partner.organization:
            raise ExchangeError(
                f"the package was presented by {opened.organization}, not by the partner "
                f"{partner.organization}"
            )
        document = result.to_json()
        document["route"] = opened.route
        document["credentials_counted"] = len(opened.verdicts)
        document["credentials_refused"] = len(opened.refused)
        return document

    def profile(self, caller: Party, session_id: str, body: Any) -> dict[str, Any]:
        info, digest, replay = self._begin(caller, session_id, Step.PROFILE, body)
        if replay is not None:
            return replay
        package = body.get("package") if isinstance(body, dict) else None
        if not isinstance(package, str):
            raise InputError("the profile step carries no package")
        challenge = Challenge.from_json(info.data.get("challenge"))
        document = self.assess(
            package, challenge=challenge, partner=caller, source=f"package of {caller.name}"
        )
        decision = document["decision"]
        answer = assessment_summary(document)
        data = dict(info.data, assessment=document)
        state = "rejected" if decision == "reject" else "assessed"
        session: dict[str, Any] = {"state": state, "data": data}
        if state == "rejected":
            session["reason"] = (
                f"our assessment rejected {caller.name}: {decision_reason(document)}"
            )
        self.record_step(
            session_id,
            Step.PROFILE,
            digest=digest,
            answer="",
            data=answer,
            session=session,
            actor=_principal(caller),
            decision=decision,
            score=document["score"],
            confidence=document["confidence"],
        )
        return answer

    def contract_trust(
        self, pdf: bytes, *, resolver: TrustResolver | None = None
    ) -> tuple[list[x509.Certificate], list[x509.Certificate], list[Party]]:
        """Trust roots, other certificates and the resolved signatories of a contract's
        signatures (each signatory resolved with our resolver: bridge or trust-list route)."""
        resolver = resolver or self.resolver()
        roots: list[x509.Certificate] = list(resolver.config.anchors)
        others: list[x509.Certificate] = []
        parties: list[Party] = []
        for chain in signer_chains(pdf):
            kinds = frozenset({SubjectKind.PERSON})
            party, resolution = self.resolve_party(
                chain, kinds=kinds, resolver=resolver, what="a contract signatory"
            )
            parties.append(party)
            if resolution.path[0] not in roots:
                roots.append(resolution.path[0])
            others.extend(c for c in resolution.path[1:] if c not in others)
        return roots, others, parties

    def verify_contract(self, pdf: bytes, *, allow_fetching: bool = True) -> ContractReport:
        """Verify a contract PDF with this home's trust (see :meth:`contract_trust`); the CRLs
        of every certificate involved are fetched over HTTP unless told not to (then only the
        validation data the document carries counts)."""
        roots, others, _ = self.contract_trust(pdf)
        crls: list[bytes] = []
        if allow_fetching:
            crls = fetch_crls([*pdf_certificates(pdf), *others], self.home.fetcher())
        return verify_contract(
            pdf, trust_roots=roots, other_certificates=others, at=self.home.now(), crls=crls
        )

    def _check_terms(self, terms: ContractTerms, partner: str) -> None:
        ours = self.organization()
        parties = {p.organization_identifier for p in terms.parties}
        if parties != {ours, partner}:
            raise ExchangeError(
                f"the contract {terms.id} is between {', '.join(sorted(parties))}, not between "
                f"this organization ({ours}) and the partner ({partner})"
            )
        with self.home._tx() as conn:
            taken = conn.execute(
                select(t.exchange_sessions.c.id).where(
                    t.exchange_sessions.c.partner_org == partner,
                    t.exchange_sessions.c.contract_id == terms.id,
                    t.exchange_sessions.c.state == "concluded",
                )
            ).first()
        if taken is not None:
            raise ExchangeError(
                f"a contract {terms.id} with {partner} was concluded before (session {taken.id})",
                hint="give new terms a new id",
            )

    def propose(self, caller: Party, session_id: str, body: Any) -> dict[str, Any]:
        info, digest, replay = self._begin(caller, session_id, Step.PROPOSE, body)
        if replay is not None:
            return replay
        pdf = decode_pdf(body.get("pdf") if isinstance(body, dict) else None, "the contract")
        report = self.verify_contract(pdf)
        terms = report.terms
        self._check_terms(terms, caller.organization)
        signed = list(report.signatures)
        if len(signed) != 1 or not _valid(signed[0]):
            raise ExchangeError(
                "a proposed contract must carry exactly one valid signature, the proposer's"
            )
        if _signature_org(signed[0]) != caller.organization:
            raise ExchangeError(
                f"the contract is signed for {_signature_org(signed[0])}, not by the proposer "
                f"{caller.organization}"
            )
        answer = {"state": "awaiting-signature", "contract": terms.id, "terms": terms.digest}
        self.record_step(
            session_id,
            Step.PROPOSE,
            digest=digest,
            answer="",
            data=answer,
            session={
                "state": "proposed",
                "contract_id": terms.id,
                "contract_pdf": pdf,
                "data": dict(info.data, terms=terms.to_json()),
            },
            actor=_principal(caller),
            contract=terms.id,
            terms=terms.digest,
        )
        return answer

    def countersign(
        self,
        session_id: str,
        *,
        signer: Signer,
        chain: Sequence[x509.Certificate],
        timestamp: Any,
    ) -> bytes:
        """Our authorized signatory signs the proposed contract of a session (locally)."""
        info = self.session(session_id)
        if info.state != "proposed":
            raise StepOrderError(
                f"session {session_id} is {info.state}: there is no proposed contract to sign"
            )
        pdf = self._contract_pdf(session_id)
        signer_org = organization_identifier_of(chain[0]) if chain else None
        if signer_org != self.organization():
            raise ExchangeError(
                f"{chain[0].subject.rfc4514_string() if chain else 'nobody'} is not a signatory "
                f"of this organization ({self.organization()})"
            )
        signed = sign_contract(
            pdf, signer=signer, chain=chain, timestamp=timestamp, at=self.home.now()
        )
        report = self.verify_contract(signed)
        if not report.complete or not all(_valid(s) for s in report.signatures):
            raise ExchangeError("the countersigned contract does not verify")
        self.record_step(
            session_id,
            Step.COUNTERSIGN,
            digest=hashlib.sha256(signed).hexdigest(),
            answer="",
            data={"state": "countersigned", "contract": info.contract_id},
            session={"state": "countersigned", "contract_pdf": signed},
            signatory=chain[0].subject.rfc4514_string(),
        )
        return signed

    def _contract_pdf(self, session_id: str) -> bytes:
        with self.home._tx() as conn:
            row = self._session_row(conn, session_id)
        if row is None or row.contract_pdf is None:
            raise NotFoundError(f"session {session_id} has no contract")
        return bytes(row.contract_pdf)

    def contract_state(self, caller: Party, session_id: str) -> dict[str, Any]:
        info = self.session(session_id)
        if info.role != "responder" or info.partner_org != caller.organization:
            raise NotFoundError(f"no session {session_id} with {caller.organization}")
        answer: dict[str, Any] = {"state": info.state, "contract": info.contract_id}
        if info.state in ("countersigned", "concluded"):
            answer["pdf"] = _b64(self._contract_pdf(session_id))
        return answer

    def conclude(self, caller: Party, session_id: str, body: Any) -> dict[str, Any]:
        info, digest, replay = self._begin(caller, session_id, Step.CONCLUDE, body)
        if replay is not None:
            return replay
        if info.state != "countersigned":
            raise StepOrderError(f"session {session_id} is {info.state}, not countersigned")
        pdf = decode_pdf(body.get("pdf") if isinstance(body, dict) else None, "the contract")
        countersigned = self._contract_pdf(session_id)
        if not pdf.startswith(countersigned):
            raise ExchangeError(
                "the final contract is not an incremental update of the one we countersigned"
            )
        report = self.verify_contract(pdf)
        if not (report.complete and report.archived and all(_valid(s) for s in report.signatures)):
            raise ExchangeError("the final contract is not complete, archived and valid")
        answer = {"state": "concluded", "contract": info.contract_id}
        self.record_step(
            session_id,
            Step.CONCLUDE,
            digest=digest,
            answer="",
            data=answer,
            session={"state": "concluded", "contract_pdf": pdf},
            actor=_principal(caller),
            contract=info.contract_id,
        )
        return answer

    # -- contracts as both sides see them -------------------------------------------------------

    def contract(self, session_id: str) -> bytes:
        return self._contract_pdf(session_id)

    def concluded(self, contract_id: str, partner: str) -> tuple[SessionInfo, ContractTerms]:
        """The latest concluded session with ``partner`` under ``contract_id``, and its terms
        (those embedded in the concluded PDF, which both signatures cover)."""
        columns = [c for c in t.exchange_sessions.c if c.name != "contract_pdf"]
        with self.home._tx() as conn:
            row = conn.execute(
                select(*columns)
                .where(
                    t.exchange_sessions.c.partner_org == partner,
                    t.exchange_sessions.c.contract_id == contract_id,
                    t.exchange_sessions.c.state == "concluded",
                )
                .order_by(t.exchange_sessions.c.updated_at.desc())
            ).first()
        if row is None:
            raise NotFoundError(f"no concluded contract {contract_id!r} with {partner}")
        info = _session(row, ())
        key = (info.id, info.updated_at)
        terms = self._terms_cache.get(key)
        if terms is None:
            pdf = self._contract_pdf(info.id)
            terms = contract_terms(pdf, source=f"contract {contract_id}")
            self._terms_cache[key] = terms
        return info, terms

    # -- messages ----------------------------------------------------------------------------

    def access_policies(self) -> AccessPolicies:
        if self._access is None:
            folder = self.home.path / "policies"
            files = sorted(folder.glob("*.cedar")) if folder.is_dir() else []
            self._access = AccessPolicies.load(files) if files else AccessPolicies.default()
        return self._access

    def message_decision(
        self,
        message: OpenedMessage,
        *,
        sender: x509.Certificate,
        resolution: Resolution,
        session: SessionInfo,
        terms: ContractTerms,
        at: datetime,
    ) -> AccessDecision:
        """May the sending system share this data element with us, for its purpose?"""
        key = (session.id, session.updated_at, sender.fingerprint(_sha256()))
        cached = self._stores.get(key)
        if cached is None:
            cached = self._message_store(sender, resolution, session, terms, message.organization)
            self._stores = {key: cached}  # one partner session at a time is the common case
        base, principal = cached
        data = entity_from_data(
            {
                "type": "Data",
                "id": message.id,
                "name": message.name,
                "organization": message.organization,
                "category": message.element,
                "contract": terms.id,
                "shared_at": at.isoformat(),
            }
        )
        store = base.with_entities([data])
        request = AccessRequest(
            principal=principal.ref,
            action=Action.SHARE,
            resource=EntityRef(EntityType.DATA, message.id),
            at=at,
            purpose=message.purpose,
        )
        return self.access_policies().decide(request, store)

    def _message_store(
        self,
        sender: x509.Certificate,
        resolution: Resolution,
        session: SessionInfo,
        terms: ContractTerms,
        organization: str,
    ) -> tuple[EntityStore, Entity]:
        """The entities a message decision rests on, but the message's own data item."""
        assessment = (session.data.get("assessment") or {}).get("decision", "unassessed")
        contract = entity_from_data(
            terms.contract_entity(), entity_type=EntityType.CONTRACT, source="contract"
        )
        principal = entity_from_identity(sender, resolution)
        partner = self._partner_entity(session, organization, _country(sender), assessment)
        own = entity_from_data(self.own_entity_data())
        return EntityStore([contract, principal, partner, own]), principal

    def _partner_entity(
        self, session: SessionInfo, organization: str, country: str, assessment: str
    ) -> Entity:
        """A partner organization as the access policies see it: its level and route when we
        first resolved it in ``session``, and our assessment of it."""
        partner = session.data.get("partner") or {}
        return entity_from_data(
            {
                "type": "Organization",
                "id": organization,
                "name": session.partner_name or organization,
                "country": country,
                "reference_level": partner.get("reference_level") or 0,
                "route": partner.get("route") or "none",
                "assessment": assessment,
            }
        )

    def contract_entities(
        self, contract_id: str, partner: str | None = None
    ) -> tuple[Entity, Entity, Entity, str | None]:
        """For data shared under a concluded contract: this organization, the Contract entity
        and the partner organization (with our assessment of it), as the access policies see
        them, and the scheme the partner's identity is from (None for a session recorded
        before that was kept). ``partner`` names the other party where the contract was
        concluded with several.
        """
        if partner is None:
            with self.home._tx() as conn:
                partners = sorted(
                    {
                        str(org)
                        for (org,) in conn.execute(
                            select(t.exchange_sessions.c.partner_org).where(
                                t.exchange_sessions.c.contract_id == contract_id,
                                t.exchange_sessions.c.state == "concluded",
                            )
                        )
                        if org
                    }
                )
            if not partners:
                raise NotFoundError(f"no concluded contract {contract_id!r} in this home")
            if len(partners) > 1:
                raise InputError(
                    f"the contract {contract_id!r} was concluded with {', '.join(partners)}",
                    hint="name the partner (its organization identifier)",
                )
            partner = partners[0]
        session, terms = self.concluded(contract_id, partner)
        party = terms.party_of(partner)
        assessment = (session.data.get("assessment") or {}).get("decision", "unassessed")
        contract = entity_from_data(
            terms.contract_entity(), entity_type=EntityType.CONTRACT, source="contract"
        )
        country = party.country if party is not None else ""
        scheme = (session.data.get("partner") or {}).get("scheme")
        return (
            entity_from_data(self.own_entity_data()),
            contract,
            self._partner_entity(session, partner, country, assessment),
            scheme if isinstance(scheme, str) and scheme else None,
        )

    def record_message(
        self,
        *,
        message_id: str,
        direction: str,
        receiver_org: str,
        accepted: bool,
        reason: str,
        token: str,
        token_digest: str,
        policies: Sequence[str] = (),
        message: OpenedMessage | None = None,
        session_id: str | None = None,
        receipt: str | None = None,
        sender_org: str | None = None,
        sender: str | None = None,
        meta: dict[str, str] | None = None,
        nonce: tuple[str, str, datetime] | None = None,
    ) -> None:
        """Store a message with its decision and receipt, and (``nonce``: key id, nonce,
        expiry) the request's signature nonce, in one transaction: a replay fails both."""
        meta = meta or {}
        now = self.home.now()
        try:
            with self.home._tx() as conn:
                if nonce is not None:
                    conn.execute(
                        insert(t.seen_nonces).values(
                            key_id=nonce[0], nonce=nonce[1][:64], expires_at=nonce[2]
                        )
                    )
                origin = (message.organization if message else sender_org) or ""
                exists = conn.execute(
                    select(t.exchange_messages.c.id).where(
                        t.exchange_messages.c.id == message_id,
                        t.exchange_messages.c.direction == direction,
                        t.exchange_messages.c.sender_org == origin,
                    )
                ).first()
                if exists is not None:
                    raise ExchangeError(f"message {message_id} was received before (replayed)")
                conn.execute(
                    insert(t.exchange_messages).values(
                        id=message_id,
                        direction=direction,
                        session_id=session_id,
                        contract_id=message.contract if message else meta.get("contract"),
                        sender_org=origin,
                        receiver_org=receiver_org,
                        sender=(message.sender.subject.rfc4514_string() if message else sender),
                        element=message.element if message else meta.get("element"),
                        purpose=message.purpose if message else meta.get("purpose"),
                        name=message.name if message else meta.get("name"),
                        accepted=accepted,
                        reason=reason,
                        policies=list(policies),
                        at=now,
                        token_digest=token_digest,
                        token=token,
                        jws=message.jws if message else None,
                        receipt=receipt,
                    )
                )
                if accepted and receipt:
                    self.home.log.append(
                        EntryKind.MESSAGE_RECEIPT,
                        {
                            "message": message_id,
                            "direction": direction,
                            "from": origin,
                            "to": receiver_org,
                            "message_sha256": token_digest,
                            "receipt": receipt,
                        },
                        subject=message_id,
                        conn=conn,
                    )
                self.home._audit(
                    conn,
                    local_principal()
                    if direction == "out"
                    else Principal(
                        "identity",
                        message.sender.fingerprint(_sha256()).hex() if message else "unknown",
                        (message.sender.subject.rfc4514_string() if message else sender)
                        or "unknown",
                    ),
                    "exchange.message-" + ("accepted" if accepted else "refused")
                    if direction == "in"
                    else "exchange.message-sent",
                    "message",
                    message_id,
                    reason=reason,
                    policies=list(policies),
                )
        except IntegrityError:
            raise AuthenticationError(
                f"message {message_id} or the request that carried it was seen before (replayed)"
            ) from None

    def messages(self, *, direction: str | None = None) -> list[dict[str, Any]]:
        query = select(t.exchange_messages).order_by(t.exchange_messages.c.at)
        if direction:
            query = query.where(t.exchange_messages.c.direction == direction)
        with self.home._tx() as conn:
            rows = conn.execute(query).all()
        return [_message(r) for r in rows]

    def message(self, message_id: str, *, direction: str = "in") -> dict[str, Any]:
        with self.home._tx() as conn:
            row = conn.execute(
                select(t.exchange_messages).where(
                    t.exchange_messages.c.id == message_id,
                    t.exchange_messages.c.direction == direction,
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no {direction}going message {message_id} in this home")
        return _message(row, full=True)


def decision_reason(document: Mapping[str, Any]) -> str:
    """The text of an assessment's decision reason (its first reason where none is marked)."""
    reasons = [r for r in document.get("reasons") or [] if isinstance(r, Mapping)]
    chosen = next((r for r in reasons if r.get("kind") == "decision"), None)
    chosen = chosen or (reasons[0] if reasons else None)
    return str(chosen.get("text", "")) if chosen else "no reason given"


def assessment_summary(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": document["decision"],
        "score": document["score"],
        "confidence": document["confidence"],
        "policy": document["policy"]["id"],
        "reasons": list(document.get("reasons", []))[:5],
        "conditions": list(document.get("conditions", [])),
    }


def _valid(signature: Any) -> bool:
    return bool(getattr(signature, "ok", False))


def _signature_org(signature: Any) -> str | None:
    value = getattr(signature, "organization_identifier", None)
    return str(value) if value is not None else None


def _partner_country(session: SessionInfo) -> str:
    """The partner's country: from its organization identifier (VATDE-..., NTRJP-...)."""
    organization = session.partner_org or ""
    return organization[3:5] if len(organization) > 5 else ""


def _country(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else ""


def signer_chains(pdf: bytes) -> list[tuple[x509.Certificate, ...]]:
    """Each signature's signer certificate and the certificates its CMS carries, leaf first."""
    try:
        from pyhanko.pdf_utils.reader import PdfFileReader

        reader = PdfFileReader(BytesIO(pdf), strict=False)
        signatures = reader.embedded_regular_signatures
    except Exception as exc:
        raise InputError(f"the contract is not a readable PDF: {exc}") from None
    chains = []
    for signature in signatures:
        leaf = x509.load_der_x509_certificate(signature.signer_cert.dump())
        carried = [
            x509.load_der_x509_certificate(c.chosen.dump())
            for c in signature.signed_data["certificates"]
        ]
        chains.append((leaf, *[c for c in carried if c != leaf]))
    return chains


def _session(row: Any, steps: tuple[str, ...]) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        role=row.role,
        partner_org=row.partner_org,
        partner_name=row.partner_name,
        partner_url=row.partner_url,
        state=row.state,
        reason=row.reason,
        contract_id=row.contract_id,
        data=dict(row.data or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=steps,
    )


def _message(row: Any, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "direction": row.direction,
        "session": row.session_id,
        "contract": row.contract_id,
        "from": row.sender_org,
        "to": row.receiver_org,
        "sender": row.sender,
        "element": row.element,
        "purpose": row.purpose,
        "name": row.name,
        "accepted": row.accepted,
        "reason": row.reason,
        "policies": list(row.policies or []),
        "at": row.at.isoformat(),
        "token_digest": row.token_digest,
    }
    if full:
        data["token"] = row.token
        data["jws"] = row.jws
        data["receipt"] = row.receipt
    return data


def _inner(stored: dict[str, Any]) -> tuple[dict[str, Any], tuple[x509.Certificate, ...]]:
    """The stored message's signed inner token, signature checked: its claims and x5c chain."""
    token = stored.get("jws")
    if not isinstance(token, str):
        raise NotFoundError(f"message {stored['id']} has no signed content stored")
    source = f"message {stored['id']}"
    try:
        jws, header, claims = decode_jwt(token, source=source)
        chain = x5c_of(header, source=source)
        verify_jws(jws, chain[0].public_key(), source=source)
    except CredentialError as exc:
        raise ValidationError(f"{source}: {exc.message}") from None
    return claims, chain


def _content(claims: dict[str, Any], source: str) -> bytes:
    try:
        content = b64url_decode(str(claims.get("content", "")))
    except ValueError:
        raise ValidationError(f"{source}: the content is not base64url") from None
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    if claims.get("digest") != digest:
        raise ValidationError(f"{source}: the content does not match its signed digest")
    return content


def verify_stored_message(home: Home, stored: dict[str, Any]) -> dict[str, Any]:
    """Check a stored message again: signature, content digest, and the sender resolved now."""
    claims, chain = _inner(stored)
    _content(claims, f"message {stored['id']}")
    party, _ = home.exchange.resolve_party(
        chain,
        kinds=frozenset({SubjectKind.SOFTWARE, SubjectKind.MACHINE, SubjectKind.ORGANIZATION}),
        what="the sender",
    )
    return {
        "id": stored["id"],
        "signature": "valid",
        "content_digest": "matches",
        "sender": chain[0].subject.rfc4514_string(),
        "organization": party.organization,
        "route": party.route,
        "reference_level": party.reference_level,
        "accepted": stored["accepted"],
        "reason": stored["reason"],
    }


def read_message(
    home: Home,
    message_id: str,
    *,
    reader: Sequence[x509.Certificate],
    purpose: str,
    roles: Sequence[str] = (),
) -> tuple[AccessDecision, bytes | None]:
    """The content of a received message, if the access policy lets ``reader`` read it for
    ``purpose`` (``roles``: those the reader's organization assigns, beside the certificate's)."""
    exchange = home.exchange
    stored = exchange.message(message_id, direction="in")
    if not stored["accepted"]:
        raise NotFoundError(f"message {message_id} was refused; there is nothing to read")
    claims, _ = _inner(stored)
    _, resolution = exchange.resolve_party(
        reader, kinds=frozenset({SubjectKind.PERSON}), what="the reader"
    )
    session, terms = exchange.concluded(stored["contract"], stored["from"])
    person = entity_from_identity(reader[0], resolution, roles=roles)
    entities = [
        entity_from_data(terms.contract_entity(), entity_type=EntityType.CONTRACT),
        person,
        entity_from_data(exchange.own_entity_data()),
        entity_from_data(
            {
                "type": "Organization",
                "id": stored["from"],
                "name": session.partner_name or stored["from"],
                "country": (session.data.get("description") or {})
                .get("organization", {})
                .get("country")
                or _partner_country(session),
                "assessment": (session.data.get("assessment") or {}).get("decision", "unassessed"),
            }
        ),
        entity_from_data(
            {
                "type": "Data",
                "id": message_id,
                "name": stored["name"] or message_id,
                "organization": stored["from"],
                "category": stored["element"],
                "contract": terms.id,
                "shared_at": stored["at"],
            }
        ),
    ]
    decision = exchange.access_policies().decide(
        AccessRequest(
            principal=person.ref,
            action=Action.READ,
            resource=EntityRef(EntityType.DATA, message_id),
            at=home.now(),
            purpose=purpose,
        ),
        EntityStore(entities),
    )
    with home._tx() as conn:
        home._audit(
            conn,
            Principal(
                "identity",
                reader[0].fingerprint(_sha256()).hex(),
                reader[0].subject.rfc4514_string(),
            ),
            "exchange.message-read" if decision.allowed else "exchange.message-read-refused",
            "message",
            message_id,
            purpose=purpose,
            policies=list(decision.policies),
        )
    if not decision.allowed:
        return decision, None
    return decision, _content(claims, f"message {message_id}")


def pdf_certificates(pdf: bytes) -> list[x509.Certificate]:
    """Every certificate a PDF's signatures and timestamp tokens carry."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf), strict=False)
    found: list[x509.Certificate] = []

    def add(signed_data: Any) -> None:
        for choice in signed_data["certificates"] or []:
            certificate = x509.load_der_x509_certificate(choice.chosen.dump())
            if certificate not in found:
                found.append(certificate)

    for signature in reader.embedded_signatures:
        signed = signature.signed_data
        add(signed)
        for info in signed["signer_infos"]:
            for attribute in info["unsigned_attrs"] or []:
                if attribute["type"].native == "signature_time_stamp_token":
                    for token in attribute["values"]:
                        add(token["content"])
    return found


def fetch_crls(certificates: Sequence[x509.Certificate], fetcher: Fetcher) -> list[bytes]:
    """The CRLs the certificates name (their distribution points), each fetched once."""
    urls: list[str] = []
    for certificate in certificates:
        try:
            points = certificate.extensions.get_extension_for_class(
                x509.CRLDistributionPoints
            ).value
        except x509.ExtensionNotFound:
            continue
        for point in points:
            for name in point.full_name or []:
                if isinstance(name, x509.UniformResourceIdentifier) and name.value not in urls:
                    urls.append(name.value)
    crls = []
    for url in urls:
        try:
            crls.append(fetcher.fetch(url))
        except FetchError as exc:
            raise ExchangeError(f"cannot fetch the CRL {url}: {exc.message}") from None
    return crls
