"""A home's configuration file (``config.toml``): node identity, addresses, database, secrets."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from trustbridge.errors import ConfigError

__all__ = ["CONFIG_FILE", "HomeConfig", "SecretSource"]

CONFIG_FILE = "config.toml"


@dataclass(frozen=True)
class SecretSource:
    """Where a key's passphrase (or a token's PIN) comes from. Never the secret itself.

    ``file`` is a path (relative to the home) of a file only its owner may read; ``env`` names
    an environment variable. A prompt is the fallback where a terminal is attached.
    """

    env: str | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("env", self.env), ("file", self.file)) if v}


@dataclass(frozen=True)
class HomeConfig:
    """The contents of ``config.toml``."""

    node_name: str
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_port: int = 8443
    database_url: str | None = None
    secrets: dict[str, SecretSource] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The plain-HTTP base URL that CRL, OCSP and CA-issuer URLs start with."""
        return f"http://{self.host}:{self.http_port}"

    def with_secret(self, slug: str, source: SecretSource) -> HomeConfig:
        return replace(self, secrets={**self.secrets, slug: source})

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "node": {
                "name": self.node_name,
                "host": self.host,
                "http_port": self.http_port,
                "https_port": self.https_port,
            },
        }
        if self.database_url:
            data["database"] = {"url": self.database_url}
        if self.secrets:
            data["secrets"] = {slug: src.to_dict() for slug, src in sorted(self.secrets.items())}
        return data

    def save(self, home: Path) -> None:
        path = home / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tomli_w.dumps(self.to_toml()).encode())
        os.replace(tmp, path)

    @classmethod
    def load(cls, home: Path) -> HomeConfig:
        path = home / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{home} is not a trustbridge home (no {CONFIG_FILE})",
                hint=f"create one with: trustbridge --home {home} init",
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        try:
            node = data["node"]
            secrets = {
                slug: SecretSource(env=v.get("env"), file=v.get("file"))
                for slug, v in data.get("secrets", {}).items()
            }
            return cls(
                node_name=str(node["name"]),
                host=str(node.get("host", "127.0.0.1")),
                http_port=int(node.get("http_port", 8080)),
                https_port=int(node.get("https_port", 8443)),
                database_url=data.get("database", {}).get("url"),
                secrets=secrets,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path} is missing or has a malformed entry: {exc}") from None
