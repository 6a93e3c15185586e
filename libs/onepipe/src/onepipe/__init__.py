"""The shared library: the pipeline contract, traces, and what several services need."""

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
