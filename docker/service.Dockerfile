# The four service images, one target each, from the repository root: gateway (the public
# API, :8000), worker (Celery, no port), ui (Streamlit, :8501) and model (the internal API,
# :8001: the only image with the pipeline's ML libraries, its artifacts trained at build time);
# and mlflow (:5000), the version registry's server: MLflow's own code, none of ours.
# compose.yaml builds each with its target and arguments:
#   PACKAGE       the workspace package the image installs (uv sync --package), alone
#   MEMBERS       the source folders of the workspace members it installs (tests/stack/test_deploy_static.py
#                 holds them to uv.lock), e.g. "libs/onepipe services/gateway"
#   PIPELINE_DIR  the model image only: the pipeline's package folder; MODEL_PIPELINE, the
#                 pipeline it trains and serves (docs/deploy.md)
# By hand, e.g.:
#   docker build -f docker/service.Dockerfile --target gateway \
#       --build-arg PACKAGE=gateway --build-arg MEMBERS="libs/onepipe services/gateway" .
#
# The bases are build arguments whose defaults are the official images; a machine that
# reaches no registry passes stand-ins (docker/local-images/build.sh, docs/deploy.md).
# No BuildKit-only syntax (cache mounts, heredocs): the classic builder builds it too. That
# builder runs every stage above the target, so the model's training comes after the other
# targets, which cost the model's build next to nothing (metadata, a folder made or copied).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
# the model image: the pipeline to train and serve; compose passes the same value as an env variable
ARG MODEL_PIPELINE=review_triage.pipeline:pipeline

FROM ${UV_IMAGE} AS uv

# --- manifests: uv.lock and every workspace member's pyproject.toml, nothing else -----
# uv resolves the whole workspace, so the dependency layer needs them all; copied on
# their own, that layer stays cached until one of them changes, whatever the members are.
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
    && find . -name pyproject.toml -not -path "*/.venv/*" -exec cp --parents {} /manifests/ ";" \
    && cp uv.lock /manifests/

# --- sources: the folders of the members the image installs, and the model's pipeline ---
FROM manifests AS sources
ARG MEMBERS
ARG PIPELINE_DIR
RUN mkdir /sources \
    && for member in ${MEMBERS:?build with --build-arg MEMBERS=...} ${PIPELINE_DIR}; do \
        cp -r --parents "${member}" /sources/; \
    done

# --- build: the venv with PACKAGE and its dependencies, no dev tools --------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /bin/
# no uv cache: this stage is thrown away, and a cache mount would need BuildKit
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY --from=manifests /manifests/ ./
ARG PACKAGE
RUN uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE:?build with --build-arg PACKAGE=...}"

# Then the members' source, installed as ordinary (non-editable) packages: the model's
# artifacts' fingerprint is taken from the installed code. PIPELINE_DIR (the model image
# only) names a pipeline's package folder, a workspace member (so it is in uv.lock); the
# model service depends on no pipeline, so its image holds this one alone, with its own
# dependencies.
COPY --from=sources /sources/ ./
ARG PIPELINE_DIR
RUN uv sync --frozen --no-dev --no-editable --package "${PACKAGE}" \
    && if [ -n "${PIPELINE_DIR}" ]; then \
        pipeline=$(python3 -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['project']['name'])" "${PIPELINE_DIR}/pyproject.toml") \
        && uv sync --frozen --no-dev --no-editable --inexact --package "${pipeline}"; \
    fi

# --- runtime: a fresh slim image with only the venv, and the non-root user --------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app
# The same path as in the build stage: the venv's scripts name their interpreter by absolute path.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /app
# Each target ends as the user 10001: numeric, so a runtime (e.g. Kubernetes
# runAsNonRoot) can tell it is not root.

# --- gateway: the public API --------------------------------------------------------------
FROM runtime AS gateway
RUN mkdir -p /data/storage && chown app:app /data/storage
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    STORAGE_URL=/data/storage
USER 10001:10001
EXPOSE 8000
CMD ["gateway", "serve"]

# --- worker: the batch worker; compose scales it (--scale worker=N) ------------------------
FROM runtime AS worker
RUN mkdir -p /data/storage && chown app:app /data/storage
ENV STORAGE_URL=/data/storage
USER 10001:10001
CMD ["celery", "-A", "batch_worker.celery_app", "worker", "--queues", "jobs", "--loglevel", "INFO"]

# --- ui: Streamlit -------------------------------------------------------------------------
FROM runtime AS ui
# `streamlit run` takes a script path: the command uses the repository's relative path,
# so the package folder (app.py and anything beside it, e.g. pages/, and .streamlit/config.toml,
# the viewer settings Streamlit reads beside the script) sits at that path under the working
# directory. Its imports of ui_service come from the installed package. Copied from the
# manifests stage, which every build has, since the classic builder runs this stage in the
# model's build too.
COPY --from=manifests /src/services/ui/src/ui_service /app/services/ui/src/ui_service
ENV STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
USER 10001:10001
EXPOSE 8501
CMD ["streamlit", "run", "services/ui/src/ui_service/app.py"]

# --- mlflow: the version registry's server (tracking, model registry, web UI) ------------------
FROM runtime AS mlflow
# the store and the artifacts on the mlflow-data volume: a new named volume takes this folder's
# owner, so the app user writes there
RUN mkdir -p /data/mlflow && chown app:app /data/mlflow
# no job runner: it serves MLflow's GenAI jobs (judges, evaluations), which a model registry never
# submits, and costs a process of ~270 MB
ENV MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
USER 10001:10001
EXPOSE 5000
# --serve-artifacts: the model service uploads and downloads artifacts through this server (no
# shared folder, no object store). --allowed-hosts: MLflow refuses requests whose Host header is not
# listed (DNS rebinding): its peers' name, and the loopback address the UI is published on.
# --workers 2: each worker holds ~290 MB; MLflow's default (4) is sized for a busy tracking server.
CMD ["mlflow", "server", "--backend-store-uri", "sqlite:////data/mlflow/mlflow.db", "--artifacts-destination", "/data/mlflow/artifacts", "--serve-artifacts", "--host", "0.0.0.0", "--port", "5000", "--workers", "2", "--allowed-hosts", "mlflow:5000,localhost:*,127.0.0.1:*"]

# --- train: the model's artifacts, from data shipped inside installed packages (no download) ---
FROM build AS train
ARG MODEL_PIPELINE
ARG PIPELINE_DIR
# the artifacts only, registered nowhere: a model service on a registry registers them there as the
# first champion when that registry is empty
ENV PATH=/app/.venv/bin:$PATH \
    MODEL_PIPELINE=${MODEL_PIPELINE} \
    MODEL_ARTIFACTS_DIR=/app/artifacts \
    MODEL_REGISTRY=none
RUN : "${PIPELINE_DIR:?the model image needs --build-arg PIPELINE_DIR=pipelines/...}" \
    && model-service train

# --- model: the model service, with its pipeline's artifacts ---------------------------------
FROM runtime AS model
ARG MODEL_PIPELINE
COPY --from=train /app/artifacts /app/artifacts
# the edge-case libraries (cases/<pipeline>.jsonl) a promotion replays (MODEL_CASES_DIR)
COPY --from=manifests /src/cases /app/cases
# Run alone (docker run), the image serves its baked artifacts with no registry: the settings'
# default, an embedded registry under /app/data, is not writable by the app user
ENV MODEL_PIPELINE=${MODEL_PIPELINE} \
    MODEL_ARTIFACTS_DIR=/app/artifacts \
    MODEL_CASES_DIR=/app/cases \
    MODEL_REGISTRY=none \
    MODEL_VERSIONS_CACHE=/tmp/versions \
    MODEL_HOST=0.0.0.0 \
    MODEL_PORT=8001
USER 10001:10001
EXPOSE 8001
CMD ["model-service", "serve"]
