"""Predict: the pipeline run on one input or a list, through the model service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

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
async def predict(
    body: PublicPredictRequest, who: PREDICT, gateway: GatewayDep, request: Request
) -> Response:
    """Run the pipeline on one input or a list (`predict` scope); traces need the `debug` scope."""
    answer, took = await gateway.predict_timed(body, who, sent=await request.body())  # read: kept
    # the model service's answer is the public one: passed on as sent, not parsed and written again
    response = Response(answer.body, media_type="application/json", headers={VERSION_HEADER: answer.version})
    if gateway.shadow.sampled(body.version):  # sent to the challenger too, once this response is sent
        inputs = body.inputs if isinstance(body.inputs, list) else [body.inputs]
        response.background = BackgroundTask(gateway.shadow.start, inputs, body.flags, answer, took)
    return response
