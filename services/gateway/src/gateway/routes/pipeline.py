"""The pipeline's description: steps, flags, schemas, examples."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import ANY_KEY, AdmittedRoute, GatewayDep
from gateway.routes.responses import AUTHENTICATED, MODEL_SERVICE, VERSIONED, problems
from onepipe import PipelineInfo
from onepipe.platform.http.envelopes import VERSION_HEADER

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"], route_class=AdmittedRoute)


@router.get("", responses={200: VERSIONED, **problems(*AUTHENTICATED, *MODEL_SERVICE)})
async def pipeline(response: Response, who: ANY_KEY, gateway: GatewayDep) -> PipelineInfo:
    """What the pipeline is and does: steps, flags with defaults and descriptions, schemas, examples."""
    info = await gateway.pipeline()
    response.headers[VERSION_HEADER] = info.version
    return info
