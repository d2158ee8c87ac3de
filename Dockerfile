# The lab's Python side (gateway, seeder, simulator/runner) as one image.
# Used by docker-compose.yml for the `gateway`, the one-shot jobs (`realms`, `clients`, `seed`)
# and the `runner`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# dependencies first (cached layer), then the sources; installed editable so the
# repository layout (keycloak/, hapi/, scenarios/) stays where the code expects it
COPY pyproject.toml README.md ./
COPY labcore labcore
COPY gateway gateway
COPY seed seed
COPY simulator simulator
RUN pip install -e '.[load,report]'
COPY keycloak keycloak
COPY hapi/application.yaml hapi/application.yaml
COPY scenarios scenarios

# Directories the lab writes, owned by its user: the results (`--results results` from /app), the
# gateway's audit log, and the lab directory (client keys, seed record), which compose mounts as a
# named volume shared by the jobs and the runner: a new volume takes the owner of its mount point.
ENV FHIRLAB_HOME=/home/lab/fhirlab
RUN useradd --uid 10001 --create-home lab \
    && mkdir -p /app/results /audit "$FHIRLAB_HOME" \
    && chown lab /app/results /audit "$FHIRLAB_HOME"
USER lab
EXPOSE 8080
CMD ["fhirlab", "--help"]
