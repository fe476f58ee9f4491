# syntax=docker/dockerfile:1
# Ops-Core: one image for the operator and the sidecar; the Deployment picks the command
# (`opscore-operator` or `opscore-sidecar`). Build with `make image`.
#
# The final stage holds the Python runtime and a virtualenv with Ops-Core and its
# dependencies, nothing else: no compiler, no pip, no source tree, no tests, no secrets.
# It runs as uid 65532 and writes nothing outside /tmp, so the root filesystem can be
# read-only (deploy/instance/deployment.yaml mounts an emptyDir on /tmp).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/opscore
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer is reused until they change.
# Every dependency ships wheels for linux/amd64 and arm64, so no compiler is needed.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/opscore/bin/pip install -r requirements.txt
COPY README.md ./
COPY opscore_logic/ opscore_logic/
COPY operator/ operator/
# The testbed and the kubectl plugin (opscore_cli, for people's machines) are not copied,
# so their console scripts would point nowhere: drop them, and pip and setuptools, which
# nothing needs at run time.
RUN /opt/opscore/bin/pip install --no-deps . \
    && rm -f /opt/opscore/bin/opscore-cluster /opt/opscore/bin/opscore-agentkit-sim \
        /opt/opscore/bin/opscore-demo /opt/opscore/bin/kubectl-opscore \
    && /opt/opscore/bin/pip uninstall -y pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="Ops-Core" \
      org.opencontainers.image.description="Kubernetes operator and sidecar for AI-agent workflows" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN python -m pip uninstall -y -q pip setuptools wheel \
    && groupadd --system --gid 65532 opscore \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin opscore
# Owned by root, not writable by the user that runs it; .pyc files were compiled by pip.
COPY --from=build /opt/opscore /opt/opscore
# USER: kopf asks getpass.getuser() for its identity, which fails for a uid without a
# passwd entry (e.g. a platform that picks the uid); the variable answers first.
ENV PATH=/opt/opscore/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=opscore
USER 65532:65532
# 8080: the sidecar's HTTP API; 8081: the operator's liveness endpoint.
EXPOSE 8080 8081
CMD ["opscore-operator"]
