"""The gateway's routes, one router per resource, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.routes import cases, health, jobs, openapi, pipeline, predict, versions

# each included by the app itself: a router of routers would add one more match per request
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    pipeline.router,
    predict.router,
    cases.router,
    jobs.router,
    versions.router,
    openapi.router,
)
