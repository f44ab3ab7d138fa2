"""A throwaway PostgreSQL cluster for tests and benchmarks.

Uses the server binaries of Debian's ``postgresql-NN`` package (not on PATH). ``initdb`` and
``postgres`` refuse to run as root, so as root they run as the ``postgres`` user on a folder
that user owns. The cluster listens on 127.0.0.1 and a free port, with trust authentication
for local connections only, and is removed on :meth:`PostgresCluster.stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from trustbridge.node.launcher import free_port

__all__ = ["PostgresCluster", "PostgresUnavailableError", "find_bindir"]


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (newest installed version)."""
    env = os.environ.get("TRUSTBRIDGE_PG_BINDIR")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found (install Debian's postgresql package: make setup)"
    )


class PostgresCluster:
    """Start with :meth:`start` (or ``with``), get :attr:`url`, stop with :meth:`stop`."""

    def __init__(self, *, database: str = "trustbridge", durable: bool = False) -> None:
        self.bindir = find_bindir()
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tb-pg-"))
        self.datadir = self.root / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        #: Durable clusters keep fsync and synchronous commit (benchmarks); others trade them
        #: for speed (tests).
        self.durable = durable

    def _run_as(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if self._as_root else []

    @property
    def user(self) -> str:
        return "postgres" if self._as_root else os.environ.get("USER", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> PostgresCluster:
        if self._as_root:
            shutil.chown(self.root, user="postgres", group="postgres")
        os.chmod(self.root, 0o700)
        subprocess.run(
            [
                *self._run_as(),
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                self.user,
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        speed = (
            []
            if self.durable
            else [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        )
        self._process = subprocess.Popen(
            [
                *self._run_as(),
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                *speed,
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.root / 'server.log').read_text()}")
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("postgres did not become ready in 30 s")
        self.create_database(self.database)
        return self

    def create_database(self, name: str) -> str:
        """Create another database in the cluster; returns its URL."""
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ],
            check=True,
            capture_output=True,
        )
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
