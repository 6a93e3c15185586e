"""Predict: the pipeline run on one input or a list, through the model service."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import PREDICT, AdmittedRoute, GatewayDep
from gateway.routes.responses import AUTHENTICATED, MODEL_SERVICE, VERSIONED, problems
from gateway.service import PublicPredictRequest
from onepipe.platform.http.envelopes import VERSION_HEADER, PredictResponse

router = APIRouter(prefix="/v1/predict", tags=["pipeline"], route_class=AdmittedRoute)


@router.post(
    "",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses={200: VERSIONED, **problems(*AUTHENTICATED, 403, 413, 415, 422, *MODEL_SERVICE)},
)
async def predict(body: PublicPredictRequest, who: PREDICT, gateway: GatewayDep) -> Response:
    """Run the pipeline on one input or a list (`predict` scope); traces need the `debug` scope."""
    answer = await gateway.predict(body, who)
    # the model service's answer is the public one: passed on as sent, not parsed and written again
    return Response(answer.body, media_type="application/json", headers={VERSION_HEADER: answer.version})
