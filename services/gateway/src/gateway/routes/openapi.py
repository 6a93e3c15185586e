"""The OpenAPI document, typed with the pipeline's schemas as the model service describes them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.deps import AdmittedRoute, GatewayDep, SettingsDep
from gateway.openapi import base_document, with_pipeline

router = APIRouter(route_class=AdmittedRoute)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, gateway: GatewayDep, settings: SettingsDep) -> JSONResponse:
    """The OpenAPI document, typed with the pipeline's schemas."""
    info = await gateway.pipeline_or_none()
    return JSONResponse(with_pipeline(base_document(request.app), info, settings.max_inputs))
