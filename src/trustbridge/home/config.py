"""A home's configuration file (``config.toml``): node identity, addresses, database, secrets,
where the node may fetch from."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from trustbridge.errors import ConfigError, InputError
from trustbridge.trust.paths import FetchAllowList, fetch_proxy_url, fetch_proxy_user

__all__ = ["CONFIG_FILE", "FETCH_PROXY_SLUG", "HomeConfig", "SecretSource"]

CONFIG_FILE = "config.toml"
#: The secret (``[secrets.fetch-proxy]``, ``TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY``) holding the
#: password of ``[fetch] proxy_user``.
FETCH_PROXY_SLUG = "fetch-proxy"


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
    """The contents of ``config.toml``.

    ``fetch_allow`` (``[fetch] allow``) restricts what the node fetches for certificates and
    credentials (CRLs, AIA and SIA bundles, status lists) to the hosts and networks it names;
    None (no ``[fetch]`` section, or one without ``allow``) leaves every host that the
    fetcher's refusals leave. ``fetch_proxy`` (``[fetch] proxy``, ``http://host:port``) is the
    forward proxy those fetches go through; None: they connect directly (a proxy in the
    environment, ``HTTPS_PROXY`` and the like, is never used for them). ``fetch_proxy_user``
    (``[fetch] proxy_user``) is the user that proxy knows this node as; the password is the
    secret :data:`FETCH_PROXY_SLUG`, never in this file.
    """

    node_name: str
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_port: int = 8443
    database_url: str | None = None
    secrets: dict[str, SecretSource] = field(default_factory=dict)
    fetch_allow: FetchAllowList | None = None
    fetch_proxy: str | None = None
    fetch_proxy_user: str | None = None

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
        fetch: dict[str, Any] = {}
        if self.fetch_allow is not None:
            fetch["allow"] = list(self.fetch_allow.entries)
        if self.fetch_proxy is not None:
            fetch["proxy"] = self.fetch_proxy
        if self.fetch_proxy_user is not None:
            fetch["proxy_user"] = self.fetch_proxy_user
        if fetch:
            data["fetch"] = fetch
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
        unknown = sorted(set(data) - _TABLES)
        if unknown:
            # A misspelt table ([Fetch], [fetch.allow]) would drop what it says without a word.
            raise ConfigError(
                f"{path}: unknown table(s) or key(s) {', '.join(unknown)}",
                hint="config.toml takes [node], [database], [secrets] and [fetch]",
            )
        fetch_allow = _fetch_allow(data.get("fetch"), path)
        fetch_proxy = _fetch_proxy(data.get("fetch"), path)
        fetch_proxy_user = _fetch_proxy_user(data.get("fetch"), path)
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
                fetch_allow=fetch_allow,
                fetch_proxy=fetch_proxy,
                fetch_proxy_user=fetch_proxy_user,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path} is missing or has a malformed entry: {exc}") from None


#: The top-level tables of ``config.toml``.
_TABLES = frozenset({"node", "database", "secrets", "fetch"})
_FETCH_KEYS = frozenset({"allow", "proxy", "proxy_user"})


def _fetch_allow(section: object, path: Path) -> FetchAllowList | None:
    """The ``[fetch]`` section's allow-list; a malformed one is an error, never ignored (an
    allow-list silently dropped would let the node fetch from anywhere)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: fetch must be a [fetch] section, not {section!r}")
    unknown = sorted(set(section) - _FETCH_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: [fetch] has unknown key(s) {', '.join(unknown)}",
            hint="[fetch] takes allow = [host names, *.domains, networks] and "
            'proxy = "http://host:port" and proxy_user = "name"',
        )
    if "allow" not in section:
        return None
    allow = section["allow"]
    if not isinstance(allow, list):
        raise ConfigError(
            f"{path}: [fetch] allow must be a list of host names, *.domains and networks, "
            f"not {allow!r}"
        )
    try:
        return FetchAllowList(tuple(allow))
    except InputError as exc:
        raise ConfigError(f"{path}: [fetch] allow: {exc.message}", hint=exc.hint) from None


def _fetch_proxy(section: object, path: Path) -> str | None:
    """The ``[fetch]`` section's proxy (checked by :func:`_fetch_allow` to be a section with
    known keys); a malformed one is an error, never ignored."""
    if not isinstance(section, dict) or "proxy" not in section:
        return None
    try:
        return fetch_proxy_url(section["proxy"])
    except InputError as exc:
        raise ConfigError(f"{path}: [fetch] proxy: {exc.message}", hint=exc.hint) from None


def _fetch_proxy_user(section: object, path: Path) -> str | None:
    """The ``[fetch]`` section's proxy user; only beside a proxy."""
    if not isinstance(section, dict) or "proxy_user" not in section:
        return None
    if "proxy" not in section:
        raise ConfigError(
            f"{path}: [fetch] proxy_user is set, but no [fetch] proxy",
            hint='name the proxy too: proxy = "http://host:port"',
        )
    try:
        return fetch_proxy_user(section["proxy_user"])
    except InputError as exc:
        raise ConfigError(f"{path}: [fetch] proxy_user: {exc.message}", hint=exc.hint) from None
