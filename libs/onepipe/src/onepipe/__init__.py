"""What a pipeline author imports: the pipeline contract, the recorder, traces, previews, errors.

Everything here is the public API of a pipeline module (docs/pipeline-contract.md lists it). What
the services share besides lives in `onepipe.platform`, which a pipeline never imports.
"""

from onepipe.contract import (
    LoadedPipeline,
    Pipeline,
    PipelineInfo,
    RunResult,
    StepInfo,
    when,
)
from onepipe.errors import ArtifactsError, PipelineDefinitionError, PipelineInputError, Problem
from onepipe.recorder import Recorder
from onepipe.trace import StepTrace, Trace

__all__ = [
    "ArtifactsError",
    "LoadedPipeline",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineInfo",
    "PipelineInputError",
    "Problem",
    "Recorder",
    "RunResult",
    "StepInfo",
    "StepTrace",
    "Trace",
    "when",
]
