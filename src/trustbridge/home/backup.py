"""Encrypted backups of a home: database, keys, configuration; restorable on another machine.

The archive is a tar (gzip) of the home's files (``config.toml``, ``keys/``, ``secrets/``,
``tls/``) and a logical dump of every table (one JSON line per row, in foreign-key order), so a
backup taken on SQLite restores onto PostgreSQL and back. It is encrypted with AES-256-GCM
under a key derived from a passphrase with scrypt; the header (format, KDF parameters, salt,
nonce) is authenticated as associated data, so any change to the file fails the restore.

File layout: ``TBBACKUP1\\n`` | 4-byte header length | header JSON | ciphertext+tag.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Connection, Integer, delete, func, insert, select, text

from trustbridge import __version__
from trustbridge.errors import DuplicateError, InputError, PassphraseError
from trustbridge.home.config import HomeConfig
from trustbridge.home.home import Home
from trustbridge.home.records import local_principal
from trustbridge.store import tables as t
from trustbridge.store.db import connect, head_revision, migrate

__all__ = ["BackupInfo", "backup_home", "restore_home"]

MAGIC = b"TBBACKUP1\n"
_FOLDERS = ("keys", "secrets", "tls")
_DUMP = "database.jsonl"
_META = "backup.json"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MIN_PASSPHRASE = 12


class BackupInfo(dict[str, Any]):
    """What a backup holds: node, time, schema revision, row counts, files."""


def _key(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(
        passphrase
    )


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$b" in value:
            return base64.b64decode(value["$b"])
        if "$t" in value:
            return datetime.fromisoformat(value["$t"])
    return value


def _dump(conn: Connection) -> tuple[bytes, dict[str, int]]:
    out = io.BytesIO()
    counts: dict[str, int] = {}
    for table in t.metadata.sorted_tables:
        order = list(table.primary_key.columns)
        count = 0
        for row in conn.execute(select(table).order_by(*order)):
            record = {"table": table.name, "row": {k: _encode(v) for k, v in row._mapping.items()}}
            out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            count += 1
        counts[table.name] = count
    return out.getvalue(), counts


def _add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def backup_home(home: Home, out: Path, passphrase: bytes) -> BackupInfo:
    """Write an encrypted backup of ``home`` to ``out`` (a new file, mode 600)."""
    if len(passphrase) < _MIN_PASSPHRASE:
        raise InputError(f"a backup passphrase needs at least {_MIN_PASSPHRASE} characters")
    if out.exists():
        raise DuplicateError(f"{out} exists already; refusing to overwrite it")
    with home.engine.connect() as conn:
        dump, counts = _dump(conn)
    files: list[str] = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        config = (home.path / "config.toml").read_bytes()
        _add(archive, "config.toml", config)
        files.append("config.toml")
        for folder in _FOLDERS:
            for path in (
                sorted((home.path / folder).rglob("*")) if (home.path / folder).is_dir() else []
            ):
                if path.is_file():
                    name = path.relative_to(home.path).as_posix()
                    _add(archive, name, path.read_bytes())
                    files.append(name)
        _add(archive, _DUMP, dump)
        info = BackupInfo(
            format=1,
            node=home.config.node_name,
            created_at=home.now().isoformat(),
            created_by=str(local_principal()),
            trustbridge=__version__,
            schema=head_revision(),
            rows=counts,
            files=files,
        )
        _add(archive, _META, json.dumps(info, indent=2).encode())
    plain = gzip.compress(buffer.getvalue(), compresslevel=6)
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = json.dumps(
        {
            "kdf": "scrypt",
            **_SCRYPT,
            "salt": salt.hex(),
            "cipher": "AES-256-GCM",
            "nonce": nonce.hex(),
        }
    ).encode()
    sealed = AESGCM(_key(passphrase, salt, _SCRYPT)).encrypt(nonce, plain, MAGIC + header)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(MAGIC + len(header).to_bytes(4, "big") + header + sealed)
    os.replace(tmp, out)
    with home._tx() as conn:
        home._audit(
            conn,
            local_principal(),
            "home.backup",
            "home",
            home.config.node_name,
            file=str(out),
            rows=sum(counts.values()),
        )
    return info


def _open(path: Path, passphrase: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read backup {path}: {exc.strerror}") from None
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise InputError(f"{path} is not a trustbridge backup")
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    header_bytes = data[start : start + size]
    try:
        header = json.loads(header_bytes)
        salt, nonce = bytes.fromhex(header["salt"]), bytes.fromhex(header["nonce"])
        params = {k: int(header[k]) for k in ("n", "r", "p")}
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: the backup header is damaged") from None
    if params["n"] > 2**20 or params["r"] > 32 or params["p"] > 16:
        raise InputError(f"{path}: the backup asks for unreasonable scrypt parameters")
    try:
        plain = AESGCM(_key(passphrase, salt, params)).decrypt(
            nonce, data[start + size :], MAGIC + header_bytes
        )
    except InvalidTag:
        raise PassphraseError(
            f"cannot decrypt {path}: wrong passphrase, or the file was changed"
        ) from None
    try:
        return gzip.decompress(plain)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: the backup content is damaged: {exc}") from None


def _members(tar_bytes: bytes) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r") as archive:
        for member in archive.getmembers():
            name = PurePosixPath(member.name)
            if not member.isfile() or name.is_absolute() or ".." in name.parts:
                raise InputError(f"backup holds an unexpected entry {member.name!r}")
            handle = archive.extractfile(member)
            assert handle is not None
            yield member.name, handle.read()


def restore_home(
    path: Path, target: Path, passphrase: bytes, *, database_url: str | None = None
) -> BackupInfo:
    """Restore the backup at ``path`` into the new home folder ``target``.

    The database is the SQLite file in ``target`` unless ``database_url`` names another (an
    empty PostgreSQL database, say). Host and ports stay as recorded, so the restored node
    answers at the URLs its certificates name.
    """
    if target.exists() and any(target.iterdir()):
        raise InputError(f"{target} exists and is not empty", hint="restore into a new folder")
    members = dict(_members(_open(path, passphrase)))
    try:
        info = BackupInfo(json.loads(members[_META]))
        dump = members[_DUMP]
        config_bytes = members["config.toml"]
    except (KeyError, ValueError):
        raise InputError(f"{path}: the backup is incomplete") from None
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        for name, data in members.items():
            if name in (_META, _DUMP):
                continue
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        (target / "config.toml").write_bytes(config_bytes)
        config = replace(HomeConfig.load(target), database_url=database_url)
        config.save(target)
        engine = connect(Home.database_url(target, config))
        try:
            migrate(engine)
            _load(engine, dump)
        finally:
            engine.dispose()
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    home = Home.open(target)
    try:
        with home._tx() as conn:
            home._audit(
                conn,
                local_principal(),
                "home.restore",
                "home",
                home.config.node_name,
                file=str(path),
                backup_created_at=info.get("created_at"),
            )
    finally:
        home.close()
    return info


def _load(engine: Any, dump: bytes) -> None:
    tables = {table.name: table for table in t.metadata.tables.values()}
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(t.schemes)).scalar_one():
            raise DuplicateError("the target database is not empty; restore into an empty one")
        # The migration seeds the log's size row; the backup carries the real one.
        conn.execute(delete(t.log_state))
        batch: list[dict[str, Any]] = []
        current: str | None = None
        for line in dump.splitlines():
            record = json.loads(line)
            name = record["table"]
            if name not in tables:
                raise InputError(f"backup holds rows of an unknown table {name!r}")
            if name != current and batch:
                assert current is not None
                conn.execute(insert(tables[current]), batch)
                batch = []
            current = name
            batch.append({k: _decode(v) for k, v in record["row"].items()})
            if len(batch) >= 1000:
                conn.execute(insert(tables[name]), batch)
                batch = []
        if batch and current is not None:
            conn.execute(insert(tables[current]), batch)
        if conn.dialect.name == "postgresql":
            for table in t.metadata.sorted_tables:
                if "id" in table.c and isinstance(table.c.id.type, Integer):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        )
                    )
