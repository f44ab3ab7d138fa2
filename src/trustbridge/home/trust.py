"""What a home trusts as a relying party: its own roots, a pinned LOTL signer, accepted lists.

Files under ``HOME/trust/``:

- ``lotl-signers.pem``: the LOTL signer certificates pinned by the operator (out of band);
- ``lotl.jws`` and ``lists/<id>.jws``: the LOTL and trust lists last accepted, as signed;
- ``state.json``: the highest sequence seen per list, its digest and the LOTL signers announced
  (:class:`~trustbridge.trust.lists.FileListState`): a rollback stays refused after a restart.

Accepting a list verifies it in full (signature, signer, schema, rollback, freshness) before it
replaces the previous one. :meth:`TrustStore.config` reads the accepted lists again at the time
asked, so a list past its next update drops out of the configuration (and says why).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.errors import ConfigError, InputError, NotFoundError
from trustbridge.home.delivery import write_private
from trustbridge.ledger.entries import EntryKind
from trustbridge.trust.lists import (
    LOTL_TYPE,
    FileListState,
    Lotl,
    MemoryListState,
    TrustList,
    TrustListError,
    read_lotl,
    read_trust_list,
)
from trustbridge.trust.paths import Fetcher, SearchLimits
from trustbridge.trust.reference import ITG
from trustbridge.trust.resolver import TrustConfig, TrustResolver
from trustbridge.trust.schemes import TrustScheme
from trustbridge.trust.validation import RevocationMode

if TYPE_CHECKING:
    from trustbridge.home.home import Home

__all__ = ["TrustSnapshot", "TrustStore"]

_PUBLISHED = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.jws$")


@dataclass(frozen=True)
class TrustSnapshot:
    """The home's trust configuration at one time, and what was left out of it and why."""

    config: TrustConfig
    problems: tuple[str, ...]


class TrustStore:
    """The home's trust as a relying party (see the module docstring)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.folder = home.path / "trust"

    @property
    def state(self) -> FileListState:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileListState(self.folder / "state.json")

    # -- pins ----------------------------------------------------------------------------------

    def _pin(self, name: str, certificates: list[x509.Certificate], what: str) -> None:
        if not certificates:
            raise InputError(f"pin at least one {what} certificate")
        self.folder.mkdir(parents=True, exist_ok=True)
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in certificates)
        (self.folder / name).write_bytes(pem)

    def _pinned(self, name: str) -> list[x509.Certificate]:
        path = self.folder / name
        if not path.exists():
            return []
        return list(x509.load_pem_x509_certificates(path.read_bytes()))

    def pin_lotl_signers(self, certificates: list[x509.Certificate]) -> None:
        self._pin("lotl-signers.pem", certificates, "LOTL signer")

    def lotl_signers(self) -> list[x509.Certificate]:
        return self._pinned("lotl-signers.pem")

    def pin_anchors(self, certificates: list[x509.Certificate]) -> None:
        """Trust these roots (a company's own scheme root): for homes without a CA."""
        for certificate in certificates:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            if not constraints.value.ca or certificate.issuer != certificate.subject:
                raise InputError(
                    f"{certificate.subject.rfc4514_string()} is not a self-signed CA certificate"
                )
        self._pin("anchors.pem", certificates, "trust anchor")

    def pinned_anchors(self) -> list[x509.Certificate]:
        return self._pinned("anchors.pem")

    # -- publishing (scheme and group operators) -------------------------------------------------

    def publish(self, name: str, data: bytes) -> Path:
        """Keep a signed list where the node serves it: ``/trust/<name>`` (``de.jws``, say)."""
        if not _PUBLISHED.match(name):
            raise InputError(f"{name!r} is no list file name (lowercase, ending in .jws)")
        folder = self.folder / "published"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        kind = EntryKind.LOTL if _jws_type(data) == LOTL_TYPE else EntryKind.TRUST_LIST
        self.home.log.append(
            kind,
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "jws": data.decode()},
            subject=name,
        )
        return path

    # -- accepting -----------------------------------------------------------------------------

    def accept_lotl(self, data: bytes, *, source: str = "") -> Lotl:
        """Verify a LOTL against the pins and the state; keep it as the current one."""
        pins = self.lotl_signers()
        if not pins and not self.state.lotl_signers():
            raise NotFoundError(
                "no LOTL signer is pinned in this home",
                hint="trustbridge lotl pin SIGNER.pem (the group operator's certificate)",
            )
        lotl = read_lotl(
            data, trusted_signers=pins, at=self.home.now(), state=self.state, source=source
        )
        write_private(self.folder / "lotl.jws", data)
        return lotl

    def accept_trust_list(self, data: bytes, *, source: str = "") -> TrustList:
        """Verify a trust list against the current LOTL and the state; keep it."""
        lotl = self.current_lotl()
        if lotl is None:
            raise NotFoundError(
                "this home has accepted no LOTL yet", hint="trustbridge lotl accept LOTL.jws"
            )
        trust_list = read_trust_list(
            data, lotl=lotl, at=self.home.now(), state=self.state, source=source
        )
        (self.folder / "lists").mkdir(parents=True, exist_ok=True)
        write_private(self.folder / "lists" / f"{trust_list.id}.jws", data)
        return trust_list

    # -- reading back --------------------------------------------------------------------------

    def current_lotl(self, at: datetime | None = None) -> Lotl | None:
        path = self.folder / "lotl.jws"
        if not path.exists():
            return None
        # Re-read with a scratch state (the signers the real one accepted, pins included):
        # the signature and staleness at ``at`` are checked again; the real state is untouched.
        return read_lotl(
            path.read_bytes(),
            trusted_signers=[*self.lotl_signers(), *self.state.lotl_signers()],
            at=at or self.home.now(),
            state=MemoryListState(),
            source=str(path),
        )

    def snapshot(self, at: datetime | None = None) -> TrustSnapshot:
        """The trust configuration at ``at``: own roots, the LOTL and the lists still fresh."""
        home = self.home
        at = at or home.now()
        problems: list[str] = []
        lotl: Lotl | None = None
        try:
            lotl = self.current_lotl(at)
        except TrustListError as exc:
            problems.append(exc.message)
        lists: list[TrustList] = []
        folder = self.folder / "lists"
        if lotl is not None and folder.is_dir():
            for path in sorted(folder.glob("*.jws")):
                try:
                    lists.append(
                        read_trust_list(
                            path.read_bytes(),
                            lotl=lotl,
                            at=at,
                            state=MemoryListState(),
                            source=str(path),
                        )
                    )
                except TrustListError as exc:
                    problems.append(exc.message)
        schemes = home.schemes()
        own = _own_scheme(home)
        config = TrustConfig(
            scheme=own,
            anchors=tuple(home.anchors()) + tuple(self.pinned_anchors()),
            lotl=lotl,
            trust_lists=tuple(lists),
            reference=lotl.group if lotl is not None else ITG,
            known_schemes=tuple(s for s in schemes if s.code != own.code),
        )
        return TrustSnapshot(config, tuple(problems))

    def resolver(
        self,
        *,
        at: datetime | None = None,
        fetcher: Fetcher | None = None,
        pool: list[x509.Certificate] | None = None,
        revocation: RevocationMode = RevocationMode.REQUIRE,
        limits: SearchLimits | None = None,
        retroactive_revocation: bool = False,
    ) -> TrustResolver:
        return TrustResolver(
            self.snapshot(at).config,
            fetcher=fetcher if fetcher is not None else self.home.fetcher(),
            pool=pool or [],
            revocation=revocation,
            limits=limits or SearchLimits(),
            retroactive_revocation=retroactive_revocation,
        )


def _own_scheme(home: Home) -> TrustScheme:
    """The home's own scheme: that of its first root CA; for a home without a CA (a company),
    the scheme whose levels its pinned root asserts (a home knows the partner's scheme too, so
    the first scheme known is not necessarily its own)."""
    schemes = home.schemes()
    if not schemes:
        raise NotFoundError("this home has no trust scheme", hint="trustbridge scheme add")
    for info in home.cas():
        if info.is_root:
            return home.scheme(info.scheme)
    for anchor in home.trust.pinned_anchors():
        try:
            asserted = {
                p.policy_identifier
                for p in anchor.extensions.get_extension_for_class(x509.CertificatePolicies).value
            }
        except x509.ExtensionNotFound:
            continue
        matching = [s for s in schemes if {lv.oid for lv in s.levels} <= asserted]
        if len(matching) == 1:
            return matching[0]
    if len(schemes) == 1:
        return schemes[0]
    raise ConfigError(
        f"this home knows the schemes {', '.join(s.code for s in schemes)} and has no root CA: "
        "which is its own is unclear",
        hint="pin the own scheme's root (trustbridge bridge pin-anchor), whose certificate "
        "policies name that scheme's levels",
    )


def _jws_type(data: bytes) -> str | None:
    """The ``typ`` of a compact JWS (None where it has none or is not a JWS)."""
    segment = data.split(b".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return None
    typ = header.get("typ") if isinstance(header, dict) else None
    return typ if isinstance(typ, str) else None
