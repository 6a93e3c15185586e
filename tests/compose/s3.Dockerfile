# An S3-compatible server for the compose test's scale-out case (moto in server mode):
# the storage root on object storage, as a stack spread over several machines has it.
# Built by tests/compose/compose.s3.yaml; users bring their own S3.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE}
COPY --from=uv /uv /bin/uv
RUN UV_NO_CACHE=1 uv venv --python /usr/local/bin/python3.11 /opt/moto \
    && UV_NO_CACHE=1 uv pip install --python /opt/moto/bin/python "moto[server]==5.2.5" \
    && groupadd --system --gid 10002 s3 \
    && useradd --system --uid 10002 --gid s3 s3
USER 10002:10002
EXPOSE 5000
CMD ["/opt/moto/bin/moto_server", "--host", "0.0.0.0", "--port", "5000"]
