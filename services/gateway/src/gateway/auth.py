"""API keys: configured as sha256 hashes, checked in constant time, with scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gateway.settings import SCOPES, ApiKeyEntry
from onepipe.server import ProblemError
from onepipe.settings import DEVELOPMENT_KEY

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="onepipe", charset="UTF-8"'}


class ConfigurationError(RuntimeError):
    """The gateway's configuration is unsafe or incomplete; the message says what to set."""


def hash_key(key: str) -> str:
    """The sha256 (hex) under which a key is configured. Keys are random tokens, so no salt is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key."""
    return "op_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name, scopes, rate limit, and a stable id (not the key)."""

    name: str
    scopes: frozenset[str]
    rate_limit: str | None
    key_id: str

    def can(self, scope: str) -> bool:
        """Whether the key has `scope` (admin has every scope)."""
        return scope in self.scopes or "admin" in self.scopes


class KeyRing:
    """The configured keys; refuses an unsafe set outside development."""

    def __init__(self, entries: list[ApiKeyEntry], environment: str) -> None:
        development_hash = hash_key(DEVELOPMENT_KEY)
        if not entries:
            if environment != "development":
                raise ConfigurationError(
                    "GATEWAY_API_KEYS is empty: configure at least one key (make one with "
                    "`uv run gateway new-key --name NAME`), "
                    "or set GATEWAY_ENVIRONMENT=development for local use"
                )
            entries = [ApiKeyEntry(name="local-development", sha256=development_hash, scopes=list(SCOPES))]
        elif environment != "development" and any(e.sha256 == development_hash for e in entries):
            raise ConfigurationError(
                "GATEWAY_API_KEYS contains the built-in development key, which is public: "
                "replace it (`uv run gateway new-key --name NAME`) outside development"
            )
        self.entries = entries
        self.uses_development_key = any(e.sha256 == development_hash for e in entries)

    def authenticate(self, presented: str | None) -> Caller:
        """The caller a key belongs to, or a 401 problem."""
        if not presented:
            raise ProblemError(
                401,
                "Missing API key",
                "send your API key in the X-API-Key header (or Authorization: Bearer <key>)",
                headers=WWW_AUTHENTICATE,
            )
        digest = hash_key(presented)
        found = None
        for entry in self.entries:  # compare with every entry: the time does not tell which matched
            if hmac.compare_digest(digest, entry.sha256):
                found = entry
        if found is None:
            raise ProblemError(401, "Invalid API key", "the API key is not valid", headers=WWW_AUTHENTICATE)
        return Caller(found.name, frozenset(found.scopes), found.rate_limit, found.sha256[:16])

    @staticmethod
    def require(caller: Caller, scope: str) -> None:
        """A 403 problem unless the caller's key has `scope`."""
        if not caller.can(scope):
            raise ProblemError(
                403,
                "Missing scope",
                f"the key '{caller.name}' lacks the '{scope}' scope needed here; its scopes: "
                + (", ".join(sorted(caller.scopes)) or "none"),
            )
