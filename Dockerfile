# syntax=docker/dockerfile:1
# ScaleDeck's image: web (gunicorn), Celery worker and beat, cluster watcher, migrations.
#   docker build -t scaledeck:0.1.0 .
# Runs as an unprivileged user with a read-only root filesystem; it writes only to /tmp
# (SCALEDECK_DATA_DIR, heartbeats, metrics files). Static files are collected here, at build
# time, into /opt/scaledeck/static (SCALEDECK_STATIC_ROOT), apart from the data dir.
# The install steps live in deploy/image/install.sh, which tests/deploy/test_image.py runs too.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV=/usr/local/bin/uv \
    PYTHON=/usr/local/bin/python3
COPY --from=uv /uv /usr/local/bin/uv
WORKDIR /src
# Dependencies first: this layer changes only with requirements.lock.
COPY requirements.lock deploy/image/install.sh ./
RUN sh ./install.sh deps /opt/scaledeck
COPY . .
RUN sh deploy/image/install.sh app /opt/scaledeck /src /opt/scaledeck/static

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ScaleDeck" \
      org.opencontainers.image.description="Control panel for vLLM model serving on Kubernetes GPU clusters" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin scaledeck
COPY --from=build /opt/scaledeck /opt/scaledeck
ENV PATH=/opt/scaledeck/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings_production \
    SCALEDECK_STATIC_ROOT=/opt/scaledeck/static \
    SCALEDECK_DATA_DIR=/tmp/scaledeck \
    SCALEDECK_HEARTBEAT_DIR=/tmp \
    SCALEDECK_METRICS_DIR=/tmp/metrics \
    SCALEDECK_LOG_FORMAT=json
USER 10001:0
WORKDIR /tmp
EXPOSE 8000 9102
CMD ["gunicorn", "config.wsgi", "--config", "python:ops.gunicorn"]
