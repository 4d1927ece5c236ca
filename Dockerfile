# syntax=docker/dockerfile:1
# ragbot image: `docker build -t ragbot .`, run by charts/ragbot as UID 10001.
#
# Base pinned by digest (python:3.11-slim, linux multi-arch index). Bump the tag and
# digest together, e.g. with Renovate or `docker buildx imagetools inspect python:3.11-slim`.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# ---- build: resolve and install the package and its dependencies into a venv ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/ragbot
COPY pyproject.toml README.md ./
COPY config ./config
COPY k8s ./k8s
COPY handlers ./handlers
COPY bot ./bot
COPY sandbox ./sandbox
# Every dependency ships wheels for linux/amd64 and arm64: no compiler in any stage.
RUN /opt/ragbot/bin/pip install --no-cache-dir --no-compile /src \
    && /opt/ragbot/bin/python -m compileall -q /opt/ragbot/lib

# ---- runtime: the venv only, a fixed non-root user, no build tools ---------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ragbot" \
      org.opencontainers.image.description="Slack bot that backs up and restores Enterprise RAG through Velero"
ENV PATH=/opt/ragbot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 ragbot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ragbot
COPY --from=build /opt/ragbot /opt/ragbot
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["ragbot"]
CMD ["serve"]
