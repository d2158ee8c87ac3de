# The lab's Python side (gateway, seeder, simulator/runner) as one image.
# Used by docker-compose.yml for the `gateway` and `runner` services.
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

RUN useradd --uid 10001 --create-home lab && mkdir -p /results /audit && chown lab /results /audit
USER lab
# the lab directory (client keys, seed record) must be writable: not under /app
ENV FHIRLAB_HOME=/home/lab/fhirlab
EXPOSE 8080
CMD ["fhirlab", "--help"]
