"""FHIRLAB_STACK=external: the lab uses servers it did not start, and never stops them."""

from __future__ import annotations

import pytest

from labcore.config import load_config
from labcore.errors import LabError
from simulator.stack import lab as stack

CLOSED = "http://127.0.0.1:1"


def external_cfg():  # type: ignore[no-untyped-def]
    return load_config(
        {
            "FHIRLAB_STACK": "external",
            "FHIRLAB_GATEWAY_URL": f"{CLOSED}/fhir",
            "FHIRLAB_HAPI_URL": f"{CLOSED}/fhir",
            "FHIRLAB_KEYCLOAK_URL": CLOSED,
            "FHIRLAB_KEYCLOAK_HEALTH_URL": f"{CLOSED}/health/ready",
        }
    )


def test_status_probes_the_given_urls() -> None:
    cfg = external_cfg()
    assert cfg.external and cfg.gateway_base_url == f"{CLOSED}/fhir"
    states = {s.name: (s.state, s.url) for s in stack.status(cfg)}
    assert states["hapi"] == ("stopped", f"{CLOSED}/fhir/metadata")
    assert states["keycloak"] == ("stopped", f"{CLOSED}/health/ready")


def test_down_refuses_to_stop_what_the_lab_did_not_start() -> None:
    with pytest.raises(LabError, match="did not start"):
        stack.down(external_cfg())


def test_unknown_stack_mode() -> None:
    with pytest.raises(LabError, match="FHIRLAB_STACK"):
        load_config({"FHIRLAB_STACK": "kubernetes"})
