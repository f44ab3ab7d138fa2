"""Deciding on a session's peer: its application instance certificate, then its trust.

:func:`verify_peer` is the decision, synchronous and without OPC UA machinery: the certificate
checks of :mod:`trustbridge.opcua.certificates`, then the trust resolver (the bridge route or the
trust-list route, revocation required). :class:`PeerValidator` runs it for a live session: a
fresh resolver per session (so that a revocation shows on the next connection), the validation
in a worker thread (path validation runs its own event loop), every verdict recorded and every
refusal logged with its reason.

A peer is checked before it has proven anything but the possession of its key, so what one check
may cost is bounded (:class:`CheckLimits`): the URLs its resolution fetches (the peer's
certificate names them), the time it takes, the checks running and waiting at once, and those
of one network address. A check that would exceed a bound is refused (fail closed). The text a
peer controls (its subject, its URIs) is logged with control characters escaped, so that a
certificate cannot forge lines in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.clock import Clock, ensure_utc
from trustbridge.errors import ValidationError
from trustbridge.opcua.certificates import (
    PeerRefusedError,
    PeerRole,
    check_host,
    check_instance_certificate,
    check_user_certificate,
)
from trustbridge.trust.paths import Fetcher, FetchError
from trustbridge.trust.resolver import (
    InsufficientLevelError,
    Resolution,
    TrustResolver,
    UntrustedError,
)
from trustbridge.trust.validation import RevocationMode

__all__ = ["LOGGER", "CheckLimits", "PeerValidator", "PeerVerdict", "printable", "verify_peer"]

#: Where accepted peers (INFO) and refusals with their reasons (WARNING) are logged. Quiet
#: unless the application configures logging (no last-resort output on stderr).
_T = TypeVar("_T")
LOGGER = logging.getLogger("trustbridge.opcua")
LOGGER.addHandler(logging.NullHandler())

#: The status code of an accepted peer.
GOOD = "Good"
#: The status code of a peer refused because this side is busy checking others.
TOO_BUSY = "BadServerTooBusy"


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, other control and
    format characters) escaped as ``\\xNN``/``\\uNNNN``: peer-controlled text for a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@dataclass(frozen=True)
class CheckLimits:
    """What deciding on one peer may cost, and how many peers are decided on at once.

    A check that would exceed a bound is refused: the fetches of a resolution (the URLs the
    peer's certificate and what they lead to name; further fetches fail, as unreachable ones
    do) and its time, the checks running at once (each in a worker thread), those waiting for
    a turn, and the checks of one network address, running or waiting.
    """

    max_fetches: int = 40
    max_seconds: float = 20.0
    max_running: int = 4
    max_waiting: int = 16
    max_per_address: int = 2

    def __post_init__(self) -> None:
        if min(self.max_fetches, self.max_running, self.max_per_address) < 1 or (
            self.max_waiting < 0 or not self.max_seconds > 0
        ):
            raise ValueError(f"check limits out of range: {self}")


@dataclass(frozen=True)
class PeerVerdict:
    """What a relying party decided on a peer, and why."""

    role: PeerRole
    #: The peer certificate's subject (RFC 4514).
    subject: str
    #: SHA-256 of the peer's certificate (hex).
    fingerprint: str
    #: The application URI the peer described itself with.
    application_uri: str
    accepted: bool
    #: ``Good``, or the OPC UA status code of the refusal.
    status: str
    #: Why: the refusal's reason, or the resolution's route and levels.
    reason: str
    at: datetime
    resolution: Resolution | None = None
    #: The peer's network address (``host:port``), where known.
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "role": self.role.value,
            "identity": self.subject,
            "fingerprint": self.fingerprint,
            "application_uri": self.application_uri,
            "accepted": self.accepted,
            "status": self.status,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }
        if self.address is not None:
            data["address"] = self.address
        resolution = self.resolution
        if resolution is not None:
            data["route"] = resolution.route.value
            data["holder_level"] = str(resolution.holder_level)
            data["own_level"] = str(resolution.own_level) if resolution.own_level else None
            data["reference_level"] = (
                str(resolution.reference_level) if resolution.reference_level else None
            )
            data["path"] = [c.subject.rfc4514_string() for c in resolution.path]
            data["routes"] = {
                o.route.value: (str(o.reference_level) if o.error is None else f"failed: {o.error}")
                for o in resolution.routes
            }
        return data


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _subject(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:  # a subject cryptography cannot decode
        return "(an undecodable subject)"


def _names(certificate: x509.Certificate) -> list[str]:
    """The ways the messages of path validation name the certificate (the peer chose them)."""
    names = [_subject(certificate)]
    with contextlib.suppress(ValueError, TypeError):  # a subject asn1crypto cannot read
        names.append(asn1_x509.Name.load(certificate.subject.public_bytes()).human_friendly)
    return [n for n in names if n]


#: How the validation messages say it (trustbridge.trust.validation, pyhanko-certvalidator).
_REVOKED = (" was revoked at ", " is revoked: ")
_REVOCATION_UNKNOWN = (
    "revocation information",
    "is revoked due to insufficient information",
    "unable to determine if",
)


def _trust_status(exc: ValidationError, certificate: x509.Certificate) -> str:
    """The status code of a resolver refusal: revoked where a route failed on a revocation,
    revocation unknown where one failed for want of revocation information (Part 4 7.38).

    The peer's own names are taken out of the messages first: its subject is its choice, and
    must not choose the status."""
    texts = [exc.message]
    if isinstance(exc, UntrustedError):
        texts += [o.error or "" for o in exc.routes]
    for name in _names(certificate):
        texts = [text.replace(name, "") for text in texts]
    if any(phrase in text for text in texts for phrase in _REVOKED):
        return "BadCertificateRevoked"
    if any(phrase in text.lower() for text in texts for phrase in _REVOCATION_UNKNOWN):
        return "BadCertificateRevocationUnknown"
    return "BadCertificateUntrusted"


def _refused(
    role: PeerRole, peer: str, reason: str, status: str, *, hint: str | None = None
) -> PeerRefusedError:
    return PeerRefusedError(
        f"{role} {peer}: {reason}", status=status, peer=peer, reason=reason, hint=hint
    )


def _without(peer: str, message: str) -> str:
    """The resolver's message without the subject it starts with (the verdict names it)."""
    return message[len(peer) :].lstrip(" :") if message.startswith(peer) else message


def verify_peer(
    certificate: x509.Certificate,
    *,
    role: PeerRole,
    application_uri: str,
    resolver: TrustResolver,
    at: datetime,
    application_type: str | None = None,
    expected_uri: str | None = None,
    host: str | None = None,
    min_level: str | None = None,
) -> PeerVerdict:
    """Decide on a peer in ``role``; return the accepted verdict or raise
    :class:`~trustbridge.opcua.certificates.PeerRefusedError`.

    A :attr:`PeerRole.USER` is the person of an X.509 user identity token: its certificate is
    checked as a person's (``application_uri`` is empty, ``expected_uri`` and ``host`` do not
    apply), then resolved like an application's.

    ``expected_uri`` pins the peer's application URI (a client that dials a known station);
    ``host`` is the host of the endpoint a client dialled (servers only); ``min_level`` a
    reference level the peer's identity must reach. ``resolver`` must require revocation
    information: one that does not is refused (fail closed).
    """
    at = ensure_utc(at)
    peer = _subject(certificate)
    if resolver.revocation is not RevocationMode.REQUIRE:
        raise _refused(
            role,
            peer,
            "not checked, the resolver does not require revocation information "
            f"(mode {resolver.revocation})",
            "BadCertificateRevocationUnknown",
            hint="use a resolver with RevocationMode.REQUIRE (the default)",
        )
    if role is PeerRole.USER:
        # A person in an X.509 user identity token: no application URI, type or host.
        check_user_certificate(certificate)
    else:
        check_instance_certificate(
            certificate,
            role=role,
            application_uri=application_uri,
            application_type=application_type,
        )
    if role is not PeerRole.USER and expected_uri is not None and application_uri != expected_uri:
        raise _refused(
            role,
            peer,
            f"application URI {application_uri!r} is not the expected {expected_uri!r}",
            "BadCertificateUriInvalid",
        )
    if role is not PeerRole.USER and host is not None:
        check_host(certificate, host)
    try:
        resolution = resolver.resolve(certificate, at=at, min_level=min_level)
    except InsufficientLevelError as exc:
        raise _refused(role, peer, exc.message, "BadCertificateUntrusted") from None
    except ValidationError as exc:
        reason = _without(peer, exc.message)
        status = _trust_status(exc, certificate)
        raise _refused(role, peer, reason, status, hint=exc.hint) from None
    reference = resolution.reference_level or "no reference level"
    return PeerVerdict(
        role=role,
        subject=printable(peer),
        fingerprint=_fingerprint(certificate),
        application_uri=printable(application_uri),
        accepted=True,
        status=GOOD,
        reason=f"trusted by the {resolution.route} route at {resolution.holder_level} "
        f"({reference})",
        at=at,
        resolution=resolution,
    )


@dataclass
class _FetchBudget:
    """A fetcher that fetches at most ``remaining`` URLs, and none after ``deadline``
    (``time.monotonic``): one check's share of the network."""

    inner: Fetcher
    remaining: int
    deadline: float

    def fetch(self, url: str) -> bytes:
        if self.remaining <= 0:
            raise FetchError(f"not fetching {url}: this peer's check has made its fetches")
        if time.monotonic() >= self.deadline:
            raise FetchError(f"not fetching {url}: this peer's check is out of time")
        self.remaining -= 1
        return self.inner.fetch(url)


class _Turns:
    """Checks running and waiting on one event loop (a worker thread each while running)."""

    def __init__(self, running: int) -> None:
        self.free = asyncio.Semaphore(running)
        self.waiting = 0
        self.per_address: dict[str, int] = {}


#: How many recent verdicts or decisions a station keeps in memory (all are logged).
KEEP_RECENT = 1000


class Tally(Generic[_T]):
    """What a long-running station keeps of its outcomes (verdicts, read decisions): the most
    recent ``keep`` (at least one), and how many of all were yes and no. Every one is also
    logged by its owner."""

    def __init__(self, keep: int = KEEP_RECENT) -> None:
        self.keep = max(keep, 1)
        self.recent: list[_T] = []
        self.yes = 0
        self.no = 0

    def add(self, item: _T, *, yes: bool) -> None:
        self.recent.append(item)
        if len(self.recent) > self.keep:
            del self.recent[: len(self.recent) - self.keep]
        if yes:
            self.yes += 1
        else:
            self.no += 1


def _host_of(address: str) -> str:
    """The host of ``host:port`` (``[v6]:port`` too): what one peer's checks are counted by."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") if host and port.isdigit() else address


@dataclass
class PeerValidator:
    """Decides on the peers of live sessions: one relying party's side of OPC UA.

    ``resolver`` makes a fresh :class:`TrustResolver` for each session (``home.trust.resolver``,
    say), so that a revocation, a new trust list or a withdrawn service shows on the next
    connection. ``limits`` bound what checking peers may cost. Every verdict is counted
    (:attr:`accepted_total`, :attr:`refused_total`), logged and handed to ``on_verdict``; the
    most recent ``keep`` are kept in :attr:`verdicts` (a long-running station does not grow).
    """

    #: The role the peers play (a server's validator checks clients).
    role: PeerRole
    resolver: Callable[[], TrustResolver]
    clock: Clock
    min_level: str | None = None
    expected_uri: str | None = None
    host: str | None = None
    on_verdict: Callable[[PeerVerdict], None] | None = None
    limits: CheckLimits = field(default_factory=CheckLimits)
    #: How many recent verdicts :attr:`verdicts` keeps.
    keep: int = KEEP_RECENT
    _tally: Tally[PeerVerdict] = field(init=False, repr=False, compare=False)
    _turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._tally = Tally(self.keep)

    @property
    def verdicts(self) -> list[PeerVerdict]:
        """The most recent ``keep`` verdicts, oldest first."""
        return self._tally.recent

    @property
    def accepted_total(self) -> int:
        return self._tally.yes

    @property
    def refused_total(self) -> int:
        return self._tally.no

    @property
    def refusals(self) -> list[PeerVerdict]:
        return [v for v in self.verdicts if not v.accepted]

    def refuse(
        self,
        certificate: x509.Certificate,
        application_uri: str,
        reason: str,
        *,
        status: str,
        at: datetime | None = None,
        address: str | None = None,
    ) -> PeerVerdict:
        """Record and log a refusal (one decided outside :func:`verify_peer` too: a
        session-level one)."""
        verdict = PeerVerdict(
            role=self.role,
            subject=printable(_subject(certificate)),
            fingerprint=_fingerprint(certificate),
            application_uri=printable(application_uri),
            accepted=False,
            status=status,
            reason=printable(reason),
            at=at or self.clock.now(),
            address=address,
        )
        self._record(verdict)
        return verdict

    async def check(
        self,
        certificate: x509.Certificate,
        application_uri: str,
        *,
        application_type: str | None = None,
        address: str | None = None,
        host: str | None = None,
    ) -> PeerVerdict:
        """Decide on a peer (never raises for a refusal: the verdict says so).

        ``address`` is the peer's network address (logged, and its checks counted against
        :attr:`CheckLimits.max_per_address`); ``host`` the host a client dialled, where the
        validator names none (:attr:`host` wins)."""
        at = self.clock.now()
        limits = self.limits
        try:
            async with asyncio.timeout(limits.max_seconds):
                verdict = await self._decide(
                    certificate,
                    application_uri,
                    application_type=application_type,
                    address=address,
                    host=self.host or host,
                    at=at,
                )
        except PeerRefusedError as exc:
            return self.refuse(
                certificate,
                application_uri,
                exc.reason,
                status=exc.status,
                at=at,
                address=address,
            )
        except TimeoutError:
            reason = f"not decided within {limits.max_seconds:g} s (max_seconds)"
            return self.refuse(
                certificate, application_uri, reason, status=TOO_BUSY, at=at, address=address
            )
        except Exception as exc:  # fail closed: whatever broke, the peer is not accepted
            reason = f"not checked, the check failed with {type(exc).__name__}: {exc}"
            return self.refuse(
                certificate,
                application_uri,
                reason,
                status="BadCertificateUntrusted",
                at=at,
                address=address,
            )
        if address is not None:
            verdict = replace(verdict, address=address)
        self._record(verdict)
        return verdict

    async def _decide(
        self,
        certificate: x509.Certificate,
        application_uri: str,
        *,
        application_type: str | None,
        address: str | None,
        host: str | None,
        at: datetime,
    ) -> PeerVerdict:
        """Wait for a turn (or be refused at once where too many wait), then run
        :func:`verify_peer` in a worker thread with a fetch budget."""
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = _Turns(self.limits.max_running)
        limits = self.limits
        source = _host_of(address) if address is not None else None
        if source is not None and turns.per_address.get(source, 0) >= limits.max_per_address:
            raise _refused(
                self.role,
                _subject(certificate),
                f"not checked, {limits.max_per_address} check(s) of {source} are under way "
                "(max_per_address)",
                TOO_BUSY,
            )
        if turns.free.locked() and turns.waiting >= limits.max_waiting:
            raise _refused(
                self.role,
                _subject(certificate),
                f"not checked, {turns.waiting} other check(s) are waiting (max_waiting)",
                TOO_BUSY,
            )
        if source is not None:
            turns.per_address[source] = turns.per_address.get(source, 0) + 1
        try:
            turns.waiting += 1
            try:
                await turns.free.acquire()
            finally:
                turns.waiting -= 1
            try:
                resolver = self.resolver()
                if resolver.fetcher is not None:
                    budget = _FetchBudget(
                        resolver.fetcher,
                        remaining=limits.max_fetches,
                        deadline=time.monotonic() + limits.max_seconds,
                    )
                    resolver = replace(resolver, fetcher=budget)
                work = functools.partial(
                    verify_peer,
                    certificate,
                    role=self.role,
                    application_uri=application_uri,
                    application_type=application_type,
                    resolver=resolver,
                    at=at,
                    expected_uri=self.expected_uri,
                    host=host,
                    min_level=self.min_level,
                )
                running = loop.run_in_executor(None, work)
            except BaseException:
                turns.free.release()
                raise
            # The turn ends when the thread does, even if nobody waits for it any more.
            running.add_done_callback(lambda _: turns.free.release())
            return await asyncio.shield(running)
        finally:
            if source is not None:
                left = turns.per_address[source] - 1
                if left:
                    turns.per_address[source] = left
                else:
                    del turns.per_address[source]

    def _record(self, verdict: PeerVerdict) -> None:
        self._tally.add(verdict, yes=verdict.accepted)
        where = f" from {verdict.address}" if verdict.address else ""
        if verdict.accepted:
            LOGGER.info(
                "accepted OPC UA %s %s [sha256 %s]%s: %s",
                self.role,
                verdict.subject,
                verdict.fingerprint[:16],
                where,
                verdict.reason,
            )
        else:
            LOGGER.warning(
                "refused OPC UA %s %s [sha256 %s]%s (%s): %s",
                self.role,
                verdict.subject,
                verdict.fingerprint[:16],
                where,
                verdict.status,
                verdict.reason,
            )
        if self.on_verdict is not None:
            self.on_verdict(verdict)
