"""CRL publishing at scale: a CA with a million revocations, and the status lookup beside it.

What is measured (figures beside a baseline measured in the same run):

- ``crl-publish-1m``: ``home.status.issue_crls(ca, delta=False)`` end to end, as a running node
  does it with the CA key loaded: the revoked-and-unexpired rows read from the database, the
  full CRL signed (P-256, ECDSA-SHA256) and stored in table ``crls``. Wall time, the CRL's size
  and the peak memory of the step. Goal of the issue: under 20 seconds (absolute).
  Baseline: ``cryptography`` alone signing the same entries from an in-memory list of
  (serial, date, reason, invalidity date) read from the database before the clock starts: one
  ``RevokedCertificateBuilder`` per entry (reason and invalidity date as our
  CRLs carry them), a ``CertificateRevocationListBuilder`` with the same CRL extensions,
  ``.sign(key, SHA256())`` and ``.public_bytes(DER)``.
- ``status-lookup-1m``: the database lookup the OCSP responder does when it signs on demand
  (``_STATUS_BY_SERIAL`` in ``trustbridge.home.status``: one connection checkout, ``SELECT`` by
  ``(ca_id, serial)``, the row made a ``StatusEntry``), averaged over random serials of the
  table, in microseconds. Goal: "microseconds, not a scan": at most 1,000 us, and the query plan
  must search the unique ``(ca_id, serial)`` index (checked, printed; SQLite calls it
  ``sqlite_autoindex_certificates_1``, PostgreSQL ``uq_certificates_ca_serial``). Baseline: the same
  lookup with the index defeated (``lower(serial) = :serial``, which finds the same rows since
  serials are stored in lower case), i.e. what a scan costs.

Memory: the publish step and the baseline each run in a fresh Python process that opens the
home and loads the CA key first; right before the step the process resets its peak RSS
(``/proc/self/clear_refs``, Linux) and afterwards reads it (``VmHWM``). Reported: that peak, and
its rise over the RSS at the start of the step (for the baseline, from before its in-memory
list was loaded from the database, so both figures cover holding the entries and the CRL).
A PostgreSQL server's own memory is not included.

The data (setup, not timed): an issuing CA whose table holds ``--count`` revoked or held
certificates that are still valid (so all of them are on the CRL), plus 1% revoked ones that have
expired (RFC 5280 3.3: they leave the CRL; the check counts them out) and 10% good ones. The rows
lie in the order of issuance, as the CA writes them; each revocation falls at a random time of
its certificate's life and is numbered by the CA's ``status_version`` in the order of the
revocations, as ``revoke`` numbers them, so the CA's counter ends at the number of revocations.
Serials are random 159-bit numbers as the CA draws them; reasons are drawn from a plausible mix
(2% on hold, half of the key compromises with an invalidity date). Rows go in through
SQLAlchemy's driver-level ``executemany`` in chunks of 20,000, with the times converted as
``UtcDateTime`` stores them. Shortcuts, none of which the CRL or the lookup reads: ``der`` holds
one real machine certificate of the CA, the same in every row (so rows have their real size,
about 1 kB of DER, but that DER's serial is not the row's); ``request_id`` is NULL; no audit
events are written for the setup revocations.

Run from the project root: ``python -m bench.crl`` (``--count`` for a smaller run,
``--backend postgresql`` for a throwaway PostgreSQL cluster, ``--no-write`` to keep
``bench/results/crl.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

if __package__ in (None, ""):  # run as a script: python bench/crl.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, select, update

from bench._common import (
    Record,
    finish,
    limit_record,
    machine_summary,
    print_table,
    stopwatch,
    time_calls,
)
from bench._homes import (
    DEVICES_CA,
    MANUFACTURER,
    MODEL,
    POSTGRESQL,
    SQLITE,
    bench_environment,
    database,
    devices_home,
)
from trustbridge import oids
from trustbridge.home.home import Home
from trustbridge.home.status import _STATUS_BY_SERIAL, _STATUS_COLUMNS, _entry
from trustbridge.pki.ca import random_serial
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for
from trustbridge.pki.profiles import MachineSubject
from trustbridge.pki.release import Principal
from trustbridge.pki.revocation import CertStatus, Reason
from trustbridge.store import tables as t
from trustbridge.store.db import connect
from trustbridge.store.types import UtcDateTime

NAME = "crl"
ACTOR = Principal("local", "bench", "CRL benchmark")

GOAL_PUBLISH_S = 20.0
GOAL_LOOKUP_US = 1000.0
CHUNK = 20_000
INDEX = "uq_certificates_ca_serial"

#: Reasons of the revoked rows and their shares (certificate-hold: the 2% held ones).
REASON_MIX: tuple[tuple[Reason, float], ...] = (
    (Reason.UNSPECIFIED, 0.30),
    (Reason.SUPERSEDED, 0.28),
    (Reason.CESSATION_OF_OPERATION, 0.20),
    (Reason.AFFILIATION_CHANGED, 0.10),
    (Reason.KEY_COMPROMISE, 0.06),
    (Reason.PRIVILEGE_WITHDRAWN, 0.035),
    (Reason.CA_COMPROMISE, 0.005),
    (Reason.CERTIFICATE_HOLD, 0.02),
)

PUBLISH_BASELINE_NAME = (
    "cryptography CertificateRevocationListBuilder from an in-memory list of the same entries "
    "(no database): RevokedCertificateBuilder(serial, date) + CRLReason/InvalidityDate "
    "extensions .build() per entry, the same CRL extensions (AKI, CRLNumber, FreshestCRL), "
    ".sign(CA key, SHA256()).public_bytes(DER); P-256"
)
LOOKUP_BASELINE_NAME = (
    "the same status SELECT with the (ca_id, serial) index defeated (lower(serial) = :serial): "
    "a scan of the CA's rows"
)


def _label(count: int) -> str:
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


# -- the home and its rows (setup, not timed) ---------------------------------------------------


def build_home(path: Path, backend: str, database_url: str | None) -> Home:
    """The benchmarks' devices home, whose devices CA has published a CRL."""
    home = devices_home(path, node_name=f"bench-{backend}", actor=ACTOR, database_url=database_url)
    home.status.issue_crls(DEVICES_CA)  # a live CA has published before
    return home


class Sample(NamedTuple):
    """What the CRL must say about one listed certificate."""

    status: CertStatus
    reason: Reason
    revoked_at: datetime
    invalidity_date: datetime | None


@dataclass(frozen=True)
class Population:
    """What was inserted, as far as the checks and the lookups need it."""

    ca_id: int
    listed: int
    expired: int
    good: int
    #: What the CRL must say about some of the listed rows, by serial.
    samples: dict[str, Sample]
    expired_samples: tuple[str, ...]
    #: Random serials of the table (listed, expired and good) for the lookups.
    lookup_serials: tuple[str, ...]

    @property
    def rows(self) -> int:
        return self.listed + self.expired + self.good


def _machine_der(home: Home, now: datetime) -> bytes:
    """One real machine certificate of the CA (not stored): the size every row's DER has."""
    key = generate_private_key(KeyType.P256)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    subject = MachineSubject(
        manufacturer=MANUFACTURER, model=MODEL, serial_number="SN0000000", country="DE"
    )
    cert = home.authority(DEVICES_CA).issue(
        subject=subject, public_key=key.public_key(), level=oids.DE_SUBSTANTIAL, at=now
    )
    return cert.public_bytes(Encoding.DER)


def _reasons(rng: random.Random, count: int) -> list[Reason]:
    reasons = [r for r, _ in REASON_MIX]
    weights = [w for _, w in REASON_MIX]
    return rng.choices(reasons, weights, k=count)


class _RowWriter:
    """Certificate rows into the database in chunks, through the driver's ``executemany``.

    The values are converted as :class:`~trustbridge.store.types.UtcDateTime` stores them (naive
    UTC ISO text on SQLite, aware datetimes on PostgreSQL), once per value here instead of through
    SQLAlchemy's per-value bind processing: setup is faster, what is stored is the same.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.columns = [c.name for c in t.certificates.c if c.name != "id"]
        self.times = {c.name for c in t.certificates.c if isinstance(c.type, UtcDateTime)}
        compiled = insert(t.certificates).compile(dialect=conn.dialect, column_keys=self.columns)
        self.sql = compiled.string
        order = compiled.positiontup if compiled.positional else None
        self.order = list(order) if order is not None else None
        self.sqlite = conn.dialect.name == "sqlite"
        self.pending: list[Any] = []

    def _value(self, name: str, value: Any) -> Any:
        if value is None or name not in self.times or not self.sqlite:
            return value
        assert value.tzinfo is UTC
        return value.isoformat(" ", "microseconds")[:26]  # less the "+00:00"

    def add(self, row: dict[str, Any]) -> None:
        values = {name: self._value(name, row[name]) for name in self.columns}
        self.pending.append(tuple(values[n] for n in self.order) if self.order else values)
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.conn.exec_driver_sql(self.sql, self.pending)
            self.pending = []


def populate(home: Home, *, count: int, lookups: int, rng: random.Random) -> Population:
    """Insert ``count`` listed revocations, 1% expired ones and 10% good certificates."""
    now = home.now().replace(microsecond=0)
    der = _machine_der(home, now)
    expired, good = count // 100, count // 10
    total = count + expired + good
    with home.engine.connect() as conn:
        ca_id = home._ca_id(conn, DEVICES_CA)
    lifetime = timedelta(days=3 * 365)
    issued_by = str(ACTOR)
    level = oids.DE_SUBSTANTIAL.dotted_string

    # Rows in the order of issuance, as the CA stores them: first the certificates issued more
    # than three years ago (expired by now, revoked while valid), then those of the last three
    # years, of which ``count`` are revoked or held and the rest good. Each revocation falls at
    # a random time of its certificate's life, and revoke() numbers them (status_version) in
    # the order they happened, which is not the order of the rows.
    day = 86_400
    past = sorted(rng.uniform(lifetime.days + 1, lifetime.days + 300) for _ in range(expired))
    recent = sorted(rng.uniform(1, lifetime.days - 1) for _ in range(count + good))
    ages = [*reversed(past), *reversed(recent)]  # days before now, oldest first
    revoked = [True] * expired + rng.sample([True] * count + [False] * good, count + good)
    revoked_at: dict[int, datetime] = {}
    for i, age in enumerate(ages):
        if revoked[i]:
            life = min(age * day, lifetime.total_seconds())
            revoked_at[i] = now - timedelta(seconds=int(age * day - life * rng.uniform(0.01, 1)))
    versions = {i: n for n, i in enumerate(sorted(revoked_at, key=revoked_at.__getitem__), 1)}
    revoked_count = len(revoked_at)
    reasons = iter(_reasons(rng, revoked_count))
    serials = [format(random_serial(), "x") for _ in range(total)]
    sampled = set(rng.sample(sorted(revoked_at), min(revoked_count, 2000)))
    samples: dict[str, Sample] = {}
    expired_samples: list[str] = []

    def row(serial: str, not_before: datetime) -> dict[str, Any]:
        fingerprint = hashlib.sha256(serial.encode()).hexdigest()
        return {
            "ca_id": ca_id,
            "serial": serial,
            "request_id": None,
            "kind": "machine",
            "purpose": "identity",
            "holder": f"{MODEL} SN{serial[:10].upper()}",
            "level_oid": level,
            "not_before": not_before,
            "not_after": not_before + lifetime,
            "key_fingerprint": hashlib.sha256(fingerprint.encode()).hexdigest(),
            "fingerprint": fingerprint,
            "der": der,
            "key_origin": "ca-generated",
            "issued_at": not_before,
            "issued_by": issued_by,
            "renewal_of": None,
            "status": CertStatus.GOOD.value,
            "revoked_at": None,
            "revocation_reason": None,
            "invalidity_date": None,
            "status_version": 0,
            "status_changed_by": None,
        }

    # A connection of its own with a large page cache (1 GiB on SQLite): the rows go in fast,
    # and the home's pooled connections, which the lookups use, keep their default cache.
    setup = connect(home.engine.url.render_as_string(hide_password=False))
    with stopwatch() as sw, setup.connect() as conn:
        if setup.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size=-1048576")
        writer = _RowWriter(conn)
        for i, serial in enumerate(serials):
            not_before = (now - timedelta(seconds=int(ages[i] * day))).replace(microsecond=0)
            at = revoked_at.get(i)
            if at is None:
                writer.add(row(serial, not_before))
                continue
            reason = next(reasons)
            status = CertStatus.ON_HOLD if reason is Reason.CERTIFICATE_HOLD else CertStatus.REVOKED
            invalidity = None
            if reason is Reason.KEY_COMPROMISE and rng.random() < 0.5:
                compromise = at - timedelta(seconds=rng.randrange(30 * day))
                invalidity = max(not_before, compromise)
            writer.add(
                row(serial, not_before)
                | {
                    "status": status.value,
                    "revoked_at": at,
                    "revocation_reason": reason.value,
                    "invalidity_date": invalidity,
                    "status_version": versions[i],
                    "status_changed_by": issued_by,
                }
            )
            if i in sampled:
                if i < expired:
                    expired_samples.append(serial)
                else:
                    samples[serial] = Sample(status, reason, at, invalidity)
        writer.flush()
        conn.execute(
            update(t.authorities)
            .where(t.authorities.c.id == ca_id)
            .values(status_version=t.authorities.c.status_version + revoked_count)
        )
        conn.commit()
    setup.dispose()
    print(
        f"setup: {total:,} certificate rows ({count:,} revoked or held and still valid, "
        f"{expired:,} revoked and expired, {good:,} good) inserted in {sw.seconds:.1f} s"
    )
    return Population(
        ca_id=ca_id,
        listed=count,
        expired=expired,
        good=good,
        samples=samples,
        expired_samples=tuple(expired_samples),
        lookup_serials=tuple(rng.choice(serials) for _ in range(lookups)),
    )


# -- the steps that run in a fresh process -------------------------------------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextmanager
def _memory(report: dict[str, Any]) -> Iterator[None]:
    """Peak RSS of the block, and its rise over the RSS at its start, into ``report`` (KiB)."""
    reset = _reset_peak()
    start = _rss_kib("VmRSS")
    yield
    peak = _rss_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report |= {"rss_start_kib": start, "rss_peak_kib": peak, "peak_exact": reset}


def child_publish(home_path: Path) -> dict[str, Any]:
    """The timed step: one full CRL from the database, signed and stored."""
    home = Home.open(home_path)
    home.authority(DEVICES_CA)  # the key is loaded once per node, not per CRL
    report: dict[str, Any] = {}
    with _memory(report), stopwatch() as sw:
        (info,) = home.status.issue_crls(DEVICES_CA, delta=False)
    home.close()
    return report | {"seconds": sw.seconds, "size": len(info.der), "number": info.number}


def _baseline_entries(home: Home) -> list[tuple[int, datetime, Reason | None, datetime | None]]:
    """The CRL's entries as plain values, read as issue_crls reads them (not timed)."""
    now = home.now()
    entries = []
    with home.engine.connect() as conn:
        ca_id = home._ca_id(conn, DEVICES_CA)
        rows = conn.execute(
            select(*_STATUS_COLUMNS)
            .where(
                and_(
                    t.certificates.c.ca_id == ca_id,
                    t.certificates.c.status != CertStatus.GOOD.value,
                    t.certificates.c.not_after >= now,
                )
            )
            .execution_options(yield_per=10_000)
        )
        for r in rows:
            reason = Reason(r.revocation_reason) if r.revocation_reason else None
            if r.status == CertStatus.ON_HOLD.value:
                reason = Reason.CERTIFICATE_HOLD
            entries.append((int(r.serial, 16), r.revoked_at, reason, r.invalidity_date))
    return entries


def child_baseline(home_path: Path) -> dict[str, Any]:
    """The baseline: cryptography's builders over an in-memory list, no database."""
    home = Home.open(home_path)
    authority = home.authority(DEVICES_CA)
    issuer, signer = authority.certificate, authority.signer
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    delta_url = authority.endpoints.delta_crl_url
    assert delta_url is not None
    now = home.now().replace(microsecond=0)
    number = home.status.latest_crl(DEVICES_CA).number  # the one issue_crls made
    algorithm = hash_for(signer.key_type)
    report: dict[str, Any] = {}
    with _memory(report):
        entries = _baseline_entries(home)
        home.close()
        with stopwatch() as sw:
            revoked = []
            for serial, at, reason, invalidity in entries:
                builder = x509.RevokedCertificateBuilder(serial, at)
                if reason is not None and reason is not Reason.UNSPECIFIED:
                    builder = builder.add_extension(x509.CRLReason(reason.flag), critical=False)
                if invalidity is not None:
                    builder = builder.add_extension(x509.InvalidityDate(invalidity), critical=False)
                revoked.append(builder.build())
            crl = x509.CertificateRevocationListBuilder(
                issuer_name=issuer.subject,
                last_update=now,
                next_update=now + timedelta(hours=24),
                extensions=[
                    x509.Extension(
                        x509.AuthorityKeyIdentifier.oid,
                        False,
                        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                    ),
                    x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
                    x509.Extension(
                        x509.FreshestCRL.oid,
                        False,
                        x509.FreshestCRL(
                            [
                                x509.DistributionPoint(
                                    [x509.UniformResourceIdentifier(delta_url)], None, None, None
                                )
                            ]
                        ),
                    ),
                ],
                revoked_certificates=revoked,
            ).sign(signer.private_key, algorithm)
            der = crl.public_bytes(Encoding.DER)
    return report | {"seconds": sw.seconds, "size": len(der), "entries": len(entries)}


def run_child(step: str, home_path: Path) -> dict[str, Any]:
    """Run ``step`` in a fresh interpreter; its report comes back as the last stdout line."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.crl", "--child", step, "--home", str(home_path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


# -- metric 1: publishing the CRL ----------------------------------------------------------------


def _mib(kib: int) -> float:
    return kib / 1024


def verify_crl(home: Home, population: Population, number: int, work_dir: Path) -> int:
    """Check the stored CRL: signature, entry count, three entries, expired ones left out."""
    status = home.status
    info = status.latest_crl(DEVICES_CA)
    if info.number != number:
        raise RuntimeError(f"latest CRL is number {info.number}, the step issued {number}")
    crl = x509.load_der_x509_crl(info.der)
    issuer = home.authority(DEVICES_CA).certificate
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise RuntimeError("the CRL's signature does not verify with the CA key")
    now = home.now()
    with home.engine.connect() as conn:
        expected = conn.execute(
            select(func.count())
            .select_from(t.certificates)
            .where(
                and_(
                    t.certificates.c.ca_id == population.ca_id,
                    t.certificates.c.status != CertStatus.GOOD.value,
                    t.certificates.c.not_after >= now,
                )
            )
        ).scalar_one()
    entries = len(crl)
    if not entries == expected == population.listed == info.entries:
        raise RuntimeError(
            f"CRL lists {entries} entries (recorded {info.entries}); the table has {expected} "
            f"revoked and unexpired rows, {population.listed} were inserted"
        )
    # Three entries: a held one, one with an invalidity date, one at random.
    samples = population.samples
    held = next((s for s, v in samples.items() if v.status is CertStatus.ON_HOLD), None)
    dated = next((s for s, v in samples.items() if v.invalidity_date is not None), None)
    picked = [s for s in (held, dated) if s is not None]
    picked += random.sample([s for s in samples if s not in picked], 3 - len(picked))
    for serial in picked:
        want = samples[serial]
        entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        if entry is None:
            raise RuntimeError(f"serial {serial} ({want.status}) is missing from the CRL")
        if entry.revocation_date_utc != want.revoked_at:
            raise RuntimeError(f"serial {serial}: revoked {entry.revocation_date_utc}, not {want}")
        try:
            flag: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(
                x509.CRLReason
            ).value.reason
        except x509.ExtensionNotFound:
            flag = None
        if flag != (None if want.reason is Reason.UNSPECIFIED else want.reason.flag):
            raise RuntimeError(f"serial {serial}: reason {flag}, expected {want.reason}")
        try:
            invalidity: datetime | None = entry.extensions.get_extension_for_class(
                x509.InvalidityDate
            ).value.invalidity_date_utc
        except x509.ExtensionNotFound:
            invalidity = None
        if invalidity != want.invalidity_date:
            raise RuntimeError(f"serial {serial}: invalidity date {invalidity}, not {want}")
    for serial in population.expired_samples[:3]:
        if crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None:
            raise RuntimeError(f"expired serial {serial} is still on the CRL")
    # And as a relying party's tool sees it.
    crl_path, ca_path = work_dir / "crl.der", work_dir / "ca.pem"
    crl_path.write_bytes(info.der)
    ca_path.write_bytes(issuer.public_bytes(Encoding.PEM))
    done = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", crl_path, "-CAfile", ca_path, "-noout"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or "verify OK" not in done.stderr + done.stdout:
        raise RuntimeError(f"openssl crl -verify failed: {done.stderr.strip()}")
    shown = ", ".join(f"{s[:8]}… {samples[s].reason}" for s in picked)
    print(
        f"verified: signature (cryptography and openssl crl), {entries:,} entries = revoked "
        f"and unexpired rows, 3 entries' date/reason/invalidity ({shown}), 3 expired left out"
    )
    return entries


@dataclass(frozen=True)
class Publish:
    seconds: float
    baseline_seconds: float
    #: Peak RSS during the step over the RSS at its start.
    rise_mib: float
    baseline_rise_mib: float
    size: int
    baseline_size: int


def run_publish(home: Home, population: Population, work_dir: Path) -> Publish:
    home_path = home.path
    ours = run_child("publish", home_path)
    exact = "" if ours["peak_exact"] else " (ru_maxrss: peak of the whole process)"
    rise = ours["rss_peak_kib"] - ours["rss_start_kib"]
    print(
        f"issue_crls: {ours['seconds']:.2f} s, CRL {ours['size']:,} bytes, peak RSS "
        f"{_mib(ours['rss_peak_kib']):,.0f} MiB (+{_mib(rise):,.0f} MiB over the "
        f"{_mib(ours['rss_start_kib']):,.0f} MiB at the start){exact}"
    )
    verify_crl(home, population, ours["number"], work_dir)
    base = run_child("baseline", home_path)
    if base["entries"] != population.listed:
        raise RuntimeError(f"baseline signed {base['entries']} entries, not {population.listed}")
    print(
        f"baseline (cryptography builders, no database): {base['seconds']:.2f} s, CRL "
        f"{base['size']:,} bytes, peak RSS {_mib(base['rss_peak_kib']):,.0f} MiB "
        f"(+{_mib(base['rss_peak_kib'] - base['rss_start_kib']):,.0f} MiB over the "
        f"{_mib(base['rss_start_kib']):,.0f} MiB before its list was loaded)"
    )
    return Publish(
        seconds=ours["seconds"],
        baseline_seconds=base["seconds"],
        rise_mib=_mib(rise),
        baseline_rise_mib=_mib(base["rss_peak_kib"] - base["rss_start_kib"]),
        size=ours["size"],
        baseline_size=base["size"],
    )


# -- metric 2: the status lookup -------------------------------------------------------------------

_SCAN_BY_SERIAL = select(*_STATUS_COLUMNS).where(
    and_(
        t.certificates.c.ca_id == bindparam("ca_id"),
        func.lower(t.certificates.c.serial) == bindparam("serial"),
    )
)


def query_plan(engine: Engine, statement: Any, params: dict[str, Any]) -> list[str]:
    """The database's plan for ``statement`` with ``params`` (SQLite or PostgreSQL)."""
    compiled = statement.compile(dialect=engine.dialect)
    values = compiled.construct_params(params)
    bound: Any = values
    if compiled.positional and compiled.positiontup is not None:
        bound = tuple(values[name] for name in compiled.positiontup)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + compiled.string, bound).all()
    return [str(r[-1]) for r in rows]


def _uses_index(plan: Sequence[str], dialect: str) -> bool:
    text = "\n".join(plan)
    if dialect == "sqlite":
        # SQLite names the index of a UNIQUE table constraint sqlite_autoindex_certificates_N.
        return "INDEX" in text and "(ca_id=? AND serial=?)" in text and "SCAN" not in text
    return INDEX in text and "Seq Scan" not in text


@dataclass(frozen=True)
class Lookup:
    per_lookup_us: float
    scan_us: float
    lookups: int
    scans: int


def run_lookup(home: Home, population: Population) -> Lookup:
    engine = home.engine
    ca_id = population.ca_id
    serials = population.lookup_serials
    probe = {"ca_id": ca_id, "serial": serials[0]}
    plan = query_plan(engine, _STATUS_BY_SERIAL, probe)
    scan_plan = query_plan(engine, _SCAN_BY_SERIAL, probe)
    print("query plan of the OCSP status lookup:\n  " + "\n  ".join(plan))
    print("query plan of the baseline (index defeated):\n  " + "\n  ".join(scan_plan))
    if not _uses_index(plan, engine.dialect.name):
        raise RuntimeError(f"the status lookup does not use the (ca_id, serial) index: {plan}")

    def lookup(statement: Any, serial: str) -> None:
        # As StatusService.answer does when it signs on demand.
        with engine.connect() as conn:
            row = conn.execute(statement, {"ca_id": ca_id, "serial": serial}).first()
        if row is None:
            raise RuntimeError(f"serial {serial} not found")
        _entry(row)

    for serial in serials[:1000]:  # warm up the pool and the statement cache
        lookup(_STATUS_BY_SERIAL, serial)
    with stopwatch() as sw:
        for serial in serials:
            lookup(_STATUS_BY_SERIAL, serial)
    per_lookup = sw.seconds / len(serials) * 1e6
    picks = itertools.cycle(serials)
    scans = time_calls(lambda: lookup(_SCAN_BY_SERIAL, next(picks)), seconds=3.0, min_calls=5)
    print(
        f"status lookup: {len(serials):,} random serials in {sw.seconds:.2f} s, "
        f"{per_lookup:,.1f} us each; with the index defeated: {scans.per_op_us / 1000:,.1f} ms "
        f"each ({scans.count} lookups)"
    )
    return Lookup(per_lookup, scans.per_op_us, len(serials), scans.count)


# -- main ----------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, work_dir: Path) -> list[Record]:
    label = _label(args.count)
    with ExitStack() as stack:
        url = stack.enter_context(database(backend))
        if url is False:
            return []
        assert url is None or isinstance(url, str)
        with stopwatch() as sw:
            home = build_home(work_dir / f"home-{backend}", backend, url)
        stack.callback(home.close)
        print(f"[{backend}] home with root and devices CA ready in {sw.seconds:.1f} s")
        population = populate(
            home, count=args.count, lookups=args.lookups, rng=random.Random(args.seed)
        )
        publish = run_publish(home, population, work_dir)
        lookup = run_lookup(home, population)
    full = args.count == 1_000_000
    return [
        limit_record(
            f"crl-publish-{label}",
            unit="s",
            ours=round(publish.seconds, 3),
            baseline=round(publish.baseline_seconds, 3),
            baseline_name=PUBLISH_BASELINE_NAME,
            goal=GOAL_PUBLISH_S if full else None,
            variant=backend,
        ),
        limit_record(
            f"crl-publish-{label}-peak-rss-rise",
            unit="MiB",
            ours=round(publish.rise_mib, 1),
            baseline=round(publish.baseline_rise_mib, 1),
            baseline_name=(
                "the baseline above, from before its list is loaded from the database; "
                "peak RSS (VmHWM reset before the step) minus the RSS at its start"
            ),
            goal=None,
            variant=backend,
        ),
        limit_record(
            f"crl-size-{label}",
            unit="bytes",
            ours=publish.size,
            baseline=publish.baseline_size,
            baseline_name="the DER of the baseline's CRL (same entries and extensions)",
            goal=None,
            variant=backend,
        ),
        limit_record(
            f"status-lookup-{label}",
            unit="us",
            ours=round(lookup.per_lookup_us, 2),
            baseline=round(lookup.scan_us, 1),
            baseline_name=LOOKUP_BASELINE_NAME,
            goal=GOAL_LOOKUP_US,
            variant=backend,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--backend",
        action="append",
        choices=(SQLITE, POSTGRESQL),
        help="run on this backend (repeatable; default: sqlite only)",
    )
    parser.add_argument(
        "--count", type=int, default=1_000_000, help="revocations on the CRL (default 1,000,000)"
    )
    parser.add_argument("--lookups", type=int, default=20_000, help="status lookups to time")
    parser.add_argument("--seed", type=int, default=20260601, help="seed of the generated rows")
    parser.add_argument("--no-write", action="store_true", help=f"do not write results/{NAME}.json")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where the temporary homes go ($TMPDIR)"
    )
    parser.add_argument("--child", choices=("publish", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        step = child_publish if args.child == "publish" else child_baseline
        print(json.dumps(step(args.home)))
        return 0

    bench_environment()
    backends = args.backend or [SQLITE]
    print(f"CRL benchmark, {args.count:,} revocations, P-256 CA; {machine_summary()}")
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="tb-bench-crl-", dir=args.work_dir) as tmp:
        for backend in backends:
            records += run_backend(backend, args, Path(tmp))
    if not records:
        print("nothing ran")
        return 0
    print_table(
        records,
        title=f"CRL of {args.count:,} revocations and status lookups, against cryptography "
        "alone and a scan",
        variant_header="backend",
    )
    finish(NAME, records, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
