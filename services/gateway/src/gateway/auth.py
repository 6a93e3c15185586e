"""API keys: configured as sha256 hashes, checked in constant time, with scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.settings import SCOPES, ApiKeyEntry, Scope
from onepipe.platform.http.server import ProblemError
from onepipe.platform.settings import DEVELOPMENT_KEY

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your API key.")
BEARER = HTTPBearer(auto_error=False, description="Your API key as a bearer token.")
KEY_SCHEMES = (API_KEY_HEADER, BEARER)  # the ways to send a key, as the OpenAPI document names them

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
        self.uses_development_key = any(e.sha256 == development_hash for e in entries)
        # made once: who each key is does not change while the process runs
        self.callers = [
            (e.sha256, Caller(e.name, frozenset(e.scopes), e.rate_limit, e.sha256[:16])) for e in entries
        ]

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
        for sha256, caller in self.callers:  # compare with every entry: the time does not tell which matched
            if hmac.compare_digest(digest, sha256):
                found = caller
        if found is None:
            raise ProblemError(401, "Invalid API key", "the API key is not valid", headers=WWW_AUTHENTICATE)
        return found

    @staticmethod
    def require(caller: Caller, scope: str, *also: str) -> None:
        """A 403 problem unless the caller's key has `scope` (or one of `also`)."""
        if not any(caller.can(s) for s in (scope, *also)):
            wanted = " or ".join(f"'{s}'" for s in (scope, *also))
            raise ProblemError(
                403,
                "Missing scope",
                f"the key '{caller.name}' lacks the {wanted} scope needed here; its scopes: "
                + (", ".join(sorted(caller.scopes)) or "none"),
            )


class Limiter(Protocol):
    """Counts a caller's requests (gateway.ratelimit.RateLimiter); raises a 429 problem past the limit."""

    async def check(self, caller: Caller) -> None: ...

    async def close(self) -> None: ...


class Access:
    """Who may use a route: the key (401), its rate limit (429), then the route's scope (403).

    Checked once per request, before its body is read (`gateway.deps.AdmittedRoute`); the route's
    dependency (`gateway.deps.Allowed`) then gets the caller already admitted.
    """

    def __init__(self, keys: KeyRing, limiter: Limiter) -> None:
        self.keys = keys
        self.limiter = limiter

    async def admit(self, request: Request, scope: Scope | None, *also: Scope) -> Caller:
        """The caller, authenticated and counted once per request, holding `scope` or one of `also`
        (None: any key)."""
        caller: Caller | None = getattr(request.state, "caller", None)
        if caller is None:
            bearer: HTTPAuthorizationCredentials | None = await BEARER(request)
            presented = await API_KEY_HEADER(request) or (bearer.credentials if bearer else None)
            caller = self.keys.authenticate(presented)
            await self.limiter.check(caller)
            request.state.caller = caller
        if scope is not None:
            KeyRing.require(caller, scope, *also)
        return caller
