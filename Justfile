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
    uv run --frozen mypy libs pipelines services tests

# lint, then every test (trains the example's artifacts first when missing or stale)
test: lint
    uv run --frozen pytest

# build the pipeline's artifacts and model card (fixed seed, held-out split)
train: sync
    uv run --frozen model-service train

# run the pipeline in-process: just predict '{"text": "..."}' [--debug] [--flag name=value ...]
predict *args: sync
    uv run --frozen model-service predict "$@"

# format the code in place
fmt: sync
    uv run --frozen ruff format .
    uv run --frozen ruff check --fix .
