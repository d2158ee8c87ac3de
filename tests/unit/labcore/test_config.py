from __future__ import annotations

from pathlib import Path

import pytest

from labcore.config import load_config
from labcore.errors import LabError
from simulator.stack.services import POSTGRES_DIALECT, hapi_database_args, hapi_database_env


def test_defaults() -> None:
    cfg = load_config({})
    assert (cfg.ports.gateway, cfg.ports.keycloak, cfg.ports.hapi) == (8080, 8180, 8280)
    assert cfg.gateway_base_url == "http://localhost:8080/fhir"
    assert cfg.issuer("tenant-a") == "http://localhost:8180/realms/tenant-a"


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_GATEWAY_PORT": "18080", "FHIRLAB_HOME": str(tmp_path)})
    assert cfg.ports.gateway == 18080
    assert cfg.home == tmp_path.resolve()
    assert cfg.run_dir == tmp_path.resolve() / "run"


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_bad_port_is_a_clear_error(value: str) -> None:
    with pytest.raises(LabError) as caught:
        load_config({"FHIRLAB_HAPI_PORT": value})
    assert "FHIRLAB_HAPI_PORT" in caught.value.message


def test_ports_must_differ() -> None:
    with pytest.raises(LabError) as caught:
        load_config({"FHIRLAB_HAPI_PORT": "8080"})
    assert "8080" in caught.value.message


def test_bad_timeout() -> None:
    with pytest.raises(LabError):
        load_config({"FHIRLAB_START_TIMEOUT": "soon"})


def test_hapi_database_defaults_to_h2_under_the_lab(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_HOME": str(tmp_path)})
    assert hapi_database_args(cfg) == [
        f"--spring.datasource.url=jdbc:h2:file:{tmp_path.resolve()}/data/hapi/h2db"
    ]


def test_hapi_on_postgresql_gets_driver_dialect_and_credentials() -> None:
    cfg = load_config(
        {
            "FHIRLAB_HAPI_DATASOURCE_URL": "jdbc:postgresql://127.0.0.1:5432/hapi",
            "FHIRLAB_HAPI_DATASOURCE_USERNAME": "hapi",
            "FHIRLAB_HAPI_DATASOURCE_PASSWORD": "demo-only",
        }
    )
    args = hapi_database_args(cfg)
    assert "--spring.datasource.driverClassName=org.postgresql.Driver" in args
    assert f"--spring.jpa.properties.hibernate.dialect={POSTGRES_DIALECT}" in args
    assert "--spring.datasource.url=jdbc:postgresql://127.0.0.1:5432/hapi" in args
    assert hapi_database_env(cfg) == {
        "SPRING_DATASOURCE_USERNAME": "hapi",
        "SPRING_DATASOURCE_PASSWORD": "demo-only",
    }
