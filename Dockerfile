# syntax=docker/dockerfile:1
# The lineguard worker. Build: docker build -t lineguard:0.1.0 .
# Run:   docker run -e LINEGUARD_BROKERS=kafka:9092 -p 6066:6066 lineguard:0.1.0
# Everything is configured by LINEGUARD_* environment variables (see docs/deployment.md).
# Dependencies come from uv.lock (exact versions and hashes); the image gets only what a
# worker needs: no embedded broker, no report charts, no dev tools.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/lineguard \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY requirements-uv.txt ./
RUN python -m pip install --require-hashes -r requirements-uv.txt
# The locked dependencies first, in a layer of their own that source changes do not rebuild.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-editable --no-install-project --python /usr/local/bin/python
COPY schemas/ schemas/
COPY workers/ workers/
RUN uv sync --frozen --no-editable --python /usr/local/bin/python

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 lineguard \
 && useradd --system --uid 10001 --gid lineguard --home-dir /var/lib/lineguard \
      --shell /usr/sbin/nologin lineguard \
 && install -d -o lineguard -g lineguard -m 0750 /var/lib/lineguard
COPY --from=build /opt/lineguard /opt/lineguard
ENV PATH=/opt/lineguard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LINEGUARD_STORE=rocksdb \
    LINEGUARD_DATA_DIR=/var/lib/lineguard \
    LINEGUARD_LOG_FORMAT=json \
    LINEGUARD_WEB_HOST=0.0.0.0 \
    LINEGUARD_WEB_PORT=6066
USER 10001:10001
WORKDIR /var/lib/lineguard
VOLUME ["/var/lib/lineguard"]
EXPOSE 6066
# Liveness only: /readyz is for orchestrators that route traffic or pace rollouts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LINEGUARD_WEB_PORT', '6066') + '/healthz', timeout=3)"]
ENTRYPOINT ["lineguard"]
CMD ["worker"]
