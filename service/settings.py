"""The service's configuration, read from the environment once at start-up.

| Variable            | Meaning                                                                        |
| ------------------- | ------------------------------------------------------------------------------ |
| `CDS_CLIENTS`       | path of a JSON or YAML file listing the trusted CDS clients (see below)          |
| `CDS_BASE_URL`      | the public base URL clients call (e.g. `https://cds.example.org`); required with |
|                     | `CDS_CLIENTS`: a token's `aud` must be this URL plus the endpoint's path         |
| `CDS_INSECURE_DEV`  | `1`: calls need no token. Refused unless `CDS_BIND_HOST` is a loopback address   |
| `CDS_BIND_HOST`     | the address the server listens on (default `127.0.0.1`); `make serve` sets it    |
|                     | to what it passes to `uvicorn --host`; set it yourself when starting uvicorn     |
| `CDS_CORS_ORIGINS`  | comma-separated origins whose browser pages may call the service                 |
| `CDS_DATA_DIR`      | where the SQLite database and the card-uuid key live (default `./var`)           |
| `CDS_DATABASE_URL`  | any SQLAlchemy URL instead of the SQLite file in `CDS_DATA_DIR`                  |

The clients file is a list (or `{"clients": [...]}`) of objects, each with `iss` (the token issuer,
compared exactly) and either `jwks_url` (an https URL of the client's JWK Set) or `jwks` (the JWK
Set inline, public keys only). With neither clients nor insecure dev mode, every service call is
answered 401 with a message saying how to configure it.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml
from jwt import PyJWK, PyJWTError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"", "0", "false", "no", "off"})
DEFAULT_DATA_DIR = Path("var")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the variable and what to do."""


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or a name for them. `0.0.0.0` and `::` (every interface) are not."""
    if not host:
        return False
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _ClientEntry(BaseModel):
    """One trusted CDS client as written in the clients file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> "_ClientEntry":
        if not self.iss.strip():
            raise ValueError("iss is empty")
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_url and jwks")
        if self.jwks_url is not None:
            parts = urlsplit(self.jwks_url)
            if not _http_url(self.jwks_url) or (parts.scheme != "https" and not is_loopback(parts.hostname)):
                raise ValueError(f"jwks_url {self.jwks_url!r} must be an https URL (http only on a loopback host)")
        if self.jwks is not None:
            check_jwks(self.jwks)
        return self


def check_jwks(jwks: Any) -> None:
    """A JWK Set of public signing keys, each with a `kid`; raises ValueError saying what is wrong."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK Set: an object whose 'keys' is a non-empty list")
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            raise ValueError(f"jwks.keys.{index} is not an object")
        if key.get("kty") == "oct":
            raise ValueError(f"jwks.keys.{index} is a symmetric key: CDS Hooks forbids HMAC-signed tokens")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi")):
            raise ValueError(f"jwks.keys.{index} holds private key material: give the public key only")
        if not key.get("kid"):
            raise ValueError(f"jwks.keys.{index} has no kid (CDS Hooks tokens name their key by kid)")
        try:
            PyJWK(key)
        except (PyJWTError, ValueError, TypeError) as error:
            raise ValueError(f"jwks.keys.{index} ({key.get('kid')}): not a usable key ({error})") from None


@dataclass(frozen=True)
class TrustedClient:
    iss: str
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = field(default=None, hash=False, compare=False)


def load_clients(path: Path) -> tuple[TrustedClient, ...]:
    """The clients file (JSON or YAML); ConfigError names the file, the entry and the reason."""
    where = f"CDS_CLIENTS={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{where}: cannot read the trusted clients file ({error.strerror or error})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ConfigError(f"{where}: not valid {kind} ({error})") from None
    if isinstance(data, dict) and set(data) == {"clients"}:
        data = data["clients"]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: expected a non-empty list of clients (or {{\"clients\": [...]}})")
    clients: list[TrustedClient] = []
    for index, raw in enumerate(data):
        try:
            entry = _ClientEntry.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            reason = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{where}: client {index}{'.' + loc if loc else ''}: {reason}") from None
        if any(c.iss == entry.iss for c in clients):
            raise ConfigError(f"{where}: client {index}: iss {entry.iss!r} is listed twice")
        clients.append(TrustedClient(entry.iss, entry.jwks_url, entry.jwks))
    return tuple(clients)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name}={env[name]!r}: expected 1 or 0")


@dataclass(frozen=True)
class Settings:
    clients: tuple[TrustedClient, ...] = ()
    base_url: str | None = None
    insecure_dev: bool = False
    bind_host: str = "127.0.0.1"
    cors_origins: tuple[str, ...] = ()
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse a configuration that would be unsafe or could not work, saying why."""
        if self.insecure_dev and self.clients:
            raise ConfigError(
                "CDS_INSECURE_DEV=1 and CDS_CLIENTS are both set: choose one (trusted clients with signed tokens, "
                "or no tokens at all for local development)"
            )
        if self.insecure_dev and not is_loopback(self.bind_host):
            raise ConfigError(
                f"CDS_INSECURE_DEV=1 is refused with CDS_BIND_HOST={self.bind_host}: without tokens the service "
                "may only listen on a loopback address (127.0.0.1 or ::1). Bind to 127.0.0.1, or configure "
                "CDS_CLIENTS (and CDS_BASE_URL) to serve other hosts. CDS_BIND_HOST must name the address given "
                "to uvicorn --host; make serve sets both."
            )
        if self.clients and not self.base_url:
            raise ConfigError(
                "CDS_BASE_URL is required with CDS_CLIENTS: the public base URL the clients call (e.g. "
                "https://cds.example.org). Every token's aud must be that URL plus the endpoint's path."
            )
        if self.base_url is not None and (not _http_url(self.base_url) or urlsplit(self.base_url).query):
            raise ConfigError(f"CDS_BASE_URL={self.base_url!r}: expected an http(s) URL such as https://cds.example.org")
        for origin in self.cors_origins:
            if origin != "*" and (not _http_url(origin) or urlsplit(origin).path not in ("", "/")):
                raise ConfigError(f"CDS_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        clients_path = env.get("CDS_CLIENTS", "").strip()
        origins = tuple(o.strip().rstrip("/") for o in env.get("CDS_CORS_ORIGINS", "").split(",") if o.strip())
        return cls(
            clients=load_clients(Path(clients_path)) if clients_path else (),
            base_url=(env.get("CDS_BASE_URL", "").strip().rstrip("/") or None),
            insecure_dev=_flag(env, "CDS_INSECURE_DEV"),
            bind_host=env.get("CDS_BIND_HOST", "").strip() or "127.0.0.1",
            cors_origins=origins,
            data_dir=Path(env.get("CDS_DATA_DIR", "").strip() or DEFAULT_DATA_DIR),
            database_url=env.get("CDS_DATABASE_URL", "").strip() or None,
        )

    def endpoint_url(self, path: str) -> str:
        """The URL a client calls for `path` (e.g. /cds-services/x): the `aud` its token must carry."""
        assert self.base_url is not None
        return self.base_url.rstrip("/") + path

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'cds.sqlite3').as_posix()}"
