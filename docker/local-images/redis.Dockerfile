# A stand-in for the official redis image: Debian's redis-server, run as the redis user
# with its data in /data, as the official image runs it. Built by docker/local-images/build.sh.
ARG BASE=onepipe-local/python:3.11
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
