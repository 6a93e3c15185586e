"""Health: alive, and ready to serve (the model service and the queue asked)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import AdmittedRoute, GatewayDep
from gateway.routes.responses import MODEL_SERVICE, problems

router = APIRouter(tags=["health"], route_class=AdmittedRoute)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "alive"}


@router.get("/readyz", responses=problems(*MODEL_SERVICE))
async def readyz(gateway: GatewayDep) -> dict[str, str]:
    """Ready when the model service is (else 503); `degraded` when only the queue is unavailable."""
    return await gateway.ready()
