"""What a route depends on, as `Annotated` types: the caller and its scope, the headers, the services.

What the request carries is in capitals: a route names its scope as a parameter (`who: JOBS`), and
the route class, `AdmittedRoute`, admits the caller (401, 429, 403) before any of the body is read.
The services end in `Dep` (`GatewayDep`): read from the app's state, set once by create_app; none
does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Protocol, runtime_checkable

from fastapi import Depends, Query, Request

from gateway.auth import Access, Caller
from gateway.idempotency import IdempotencyHeader, IdempotencyStore
from gateway.jobs import JobService
from gateway.service import Gateway
from gateway.settings import Scope, Settings
from gateway.state import services_of
from onepipe.platform.http.json_bodies import JsonBodyRoute
from onepipe.platform.jobs.storage import CaseStore, CheckStore


def access_of(request: Request) -> Access:
    """The app's Access: keys, rate limits, scopes."""
    return services_of(request.app).access


class Allowed:
    """A route's dependency on a caller holding `scope` or one of `also` (None: any valid key); see Access."""

    def __init__(self, scope: Scope | None, *also: Scope) -> None:
        self.scope = scope
        self.also = also

    async def __call__(self, request: Request) -> Caller:
        return await access_of(request).admit(request, self.scope, *self.also)


@runtime_checkable
class HeaderCheck(Protocol):
    """A dependency whose headers are checked before the body is read (e.g. Idempotency-Key)."""

    def before_body(self, request: Request) -> None: ...


class AdmittedRoute(JsonBodyRoute):
    """A route that admits its caller (`Allowed` among its dependencies) before reading any body."""

    @cached_property
    def admissions(self) -> list[Allowed]:
        """The route's scope dependencies."""
        return [d.call for d in self.dependant.dependencies if isinstance(d.call, Allowed)]

    @cached_property
    def header_checks(self) -> list[HeaderCheck]:
        """The route's header dependencies; found once, as a check against a Protocol is slow."""
        calls: list[object] = [d.call for d in self.dependant.dependencies]
        return [call for call in calls if isinstance(call, HeaderCheck)]

    async def before_body(self, request: Request) -> None:
        for allowed in self.admissions:
            await access_of(request).admit(request, allowed.scope, *allowed.also)
        # then the route's own headers: a bad one is refused before a large upload is read
        for check in self.header_checks:
            check.before_body(request)


# what each route asks of its caller: a valid key (401), under its rate limit (429), with the scope (403),
# all checked before the body is read
ANY_KEY = Annotated[Caller, Depends(Allowed(None))]
PREDICT = Annotated[Caller, Depends(Allowed("predict"))]
FEEDBACK = Annotated[Caller, Depends(Allowed("feedback"))]
CASES = Annotated[Caller, Depends(Allowed("feedback", "cases:admin"))]  # a key's own, or every key's
JOBS = Annotated[Caller, Depends(Allowed("jobs"))]
VERSIONS = Annotated[Caller, Depends(Allowed("versions"))]

IDEMPOTENCY_KEY = Annotated[str | None, Depends(IdempotencyHeader())]


@dataclass(frozen=True)
class Page:
    """Which part of a list: `limit` items (1 to 100) from `offset` on."""

    offset: int
    limit: int


async def _page(
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Page:
    return Page(offset, limit)


PAGE = Annotated[Page, Depends(_page)]


# async: a plain function would be run in a worker thread on every request
async def _settings(request: Request) -> Settings:
    return services_of(request.app).settings


async def _gateway(request: Request) -> Gateway:
    return services_of(request.app).gateway


async def _jobs(request: Request) -> JobService:
    return services_of(request.app).jobs


async def _cases(request: Request) -> CaseStore:
    return services_of(request.app).cases


async def _checks(request: Request) -> CheckStore:
    return services_of(request.app).checks


async def _claims(request: Request) -> IdempotencyStore:
    return services_of(request.app).claims


async def _base_url(request: Request) -> str:
    return str(request.base_url)


SettingsDep = Annotated[Settings, Depends(_settings)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
JobServiceDep = Annotated[JobService, Depends(_jobs)]
CheckStoreDep = Annotated[CheckStore, Depends(_checks)]
CaseStoreDep = Annotated[CaseStore, Depends(_cases)]
ClaimsDep = Annotated[IdempotencyStore, Depends(_claims)]
BASE_URL = Annotated[str, Depends(_base_url)]  # where job URLs start: this request's scheme, host and root
