# One command surface for the project. `just` alone lists the recipes.

set dotenv-load := true
set positional-arguments := true

# list the recipes
default:
    @just --list --unsorted

# install the workspace (every member and the dev tools) from the lock file
sync:
    uv sync --frozen --all-packages

# ruff (lint and format check) and mypy (strict) over every member and the tests
lint: sync
    uv run --frozen ruff check .
    uv run --frozen ruff format --check .
    uv run --frozen mypy libs pipelines services tests benchmarks scripts

# lint, then every test (trains the example's artifacts first when missing or stale)
test: lint
    uv run --frozen pytest

# build the pipeline's artifacts and model card (fixed seed, held-out split)
train: sync
    uv run --frozen model-service train

# run the pipeline in-process: just predict '{"text": "..."}' [--debug] [--flag name=value ...]
predict *args: sync
    uv run --frozen model-service predict "$@"

# measure throughput: in-process pipeline vs the model service over HTTP (ratios in one run)
bench: sync
    uv run --frozen --no-sync model-service train --if-needed
    uv run --frozen --no-sync python benchmarks/model_service.py

# submit a batch job through the gateway and save its reports: just batch FILE [--flag n=v] [--compare n=v] [--map field=column]
batch file *args: sync
    uv run --frozen --no-sync gateway batch "$@"

# run the stack as local processes (Procfile, honcho), on Redis or the embedded default; Ctrl-C stops it all
up: sync
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(uv run --frozen --no-sync python scripts/stack_env.py)"
    uv run --frozen --no-sync model-service train --if-needed
    echo "model service  http://127.0.0.1:${MODEL_PORT:-8001}  (internal; docs at /docs)"
    echo "gateway        http://127.0.0.1:${GATEWAY_PORT:-8000}  (docs at /docs)"
    echo "ui             http://127.0.0.1:${STREAMLIT_SERVER_PORT:-8501}"
    if [ "${GATEWAY_ENVIRONMENT:-development}" = "development" ]; then
        echo "local API key  onepipe-local-development-key  (X-API-Key header; development only)"
    fi
    export GATEWAY_ENVIRONMENT="${GATEWAY_ENVIRONMENT:-development}"
    export MODEL_URL="${MODEL_URL:-http://127.0.0.1:${MODEL_PORT:-8001}}"
    export GATEWAY_URL="${GATEWAY_URL:-http://127.0.0.1:${GATEWAY_PORT:-8000}}"
    export STREAMLIT_SERVER_HEADLESS=true STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
    exec uv run --frozen --no-sync honcho start -f Procfile

# format the code in place
fmt: sync
    uv run --frozen ruff format .
    uv run --frozen ruff check --fix .
