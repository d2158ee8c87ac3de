"""`--scenarios DIR`, `--clients DIR`, `--policy FILE`: your files replace or join the lab's,
and a mistake in them is reported with file, line and field before anything runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labcore.config import REPO_ROOT, load_config
from labcore.errors import LabError
from labcore.profiles import PROFILE_DIR, lab_profiles
from simulator.cli.own_config import OwnConfig, with_own_config
from simulator.scenarios import lab_library


def _profile(tmp_path: Path, shipped: str, **changes: object) -> Path:
    directory = tmp_path / "clients"
    directory.mkdir(exist_ok=True)
    data = yaml.safe_load((REPO_ROOT / PROFILE_DIR / f"{shipped}.yaml").read_text())
    data.update(changes)
    (directory / f"{data['client_id']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def test_environment_names_your_files(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_CLIENTS": str(tmp_path), "FHIRLAB_SCENARIOS": str(tmp_path)})
    assert cfg.clients_dir == cfg.scenarios_dir == tmp_path.resolve()
    assert load_config({}).clients_dir is None


def test_your_profiles_replace_the_labs_by_client_id_and_new_ones_join(tmp_path: Path) -> None:
    own = _profile(tmp_path, "long-token-assistant", access_token_lifetime_s=600)
    _profile(tmp_path, "scheduling-assistant", client_id="my-scheduler")
    profiles = lab_profiles(REPO_ROOT, own)
    assert profiles["long-token-assistant"].access_token_lifetime_s == 600
    assert "my-scheduler" in profiles and "scheduling-assistant" in profiles
    assert lab_profiles(REPO_ROOT)["long-token-assistant"].access_token_lifetime_s == 28800


def test_with_own_config_sets_each_file(tmp_path: Path) -> None:
    clients = _profile(tmp_path, "wildcard-scheduler", scopes=["launch/patient"])
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(REPO_ROOT / "scenarios" / "scheduling-assistant.yaml", scenarios)
    policy = tmp_path / "policy.yaml"
    shutil.copy(REPO_ROOT / "gateway" / "policy.yaml", policy)
    own = OwnConfig(scenarios, clients, policy)
    cfg = with_own_config(load_config({}), own)
    assert (cfg.scenarios_dir, cfg.clients_dir, cfg.gateway_policy) == (scenarios, clients, policy)
    assert list(lab_library(cfg)) == ["scheduling-assistant"]
    assert own.needs_own_gateway
    assert not OwnConfig(scenarios=scenarios).needs_own_gateway


def test_a_broken_profile_names_file_line_and_field(tmp_path: Path) -> None:
    own = _profile(tmp_path, "scheduling-assistant", access_token_lifetime_s=5)
    with pytest.raises(LabError) as caught:
        with_own_config(load_config({}), OwnConfig(clients=own))
    assert f"{own / 'scheduling-assistant.yaml'}: line " in caught.value.message
    assert "access_token_lifetime_s" in caught.value.message


def test_a_profile_with_an_unknown_tenant_is_refused(tmp_path: Path) -> None:
    own = _profile(tmp_path, "scheduling-assistant", tenants=["tenant-z"])
    with pytest.raises(LabError, match="unknown tenant 'tenant-z'"):
        with_own_config(load_config({}), OwnConfig(clients=own))


def test_a_broken_policy_names_file_line_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = (REPO_ROOT / "gateway" / "policy.yaml").read_text()
    policy.write_text(text.replace("C08: enforce", "C08: sometimes"))
    with pytest.raises(LabError) as caught:
        with_own_config(load_config({}), OwnConfig(policy=policy))
    line = text.splitlines().index(
        next(x for x in text.splitlines() if x.strip().startswith("C08:"))
    )
    assert f"line {line + 1}: controls.C08" in caught.value.message


def test_scenarios_are_checked_against_your_clients(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    data = yaml.safe_load((REPO_ROOT / "scenarios" / "scheduling-assistant.yaml").read_text())
    data["client"] = "my-scheduler"
    (scenarios / "scheduling-assistant.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(LabError, match="my-scheduler"):
        with_own_config(load_config({}), OwnConfig(scenarios=scenarios))
    clients = _profile(tmp_path, "scheduling-assistant", client_id="my-scheduler")
    cfg = with_own_config(load_config({}), OwnConfig(scenarios=scenarios, clients=clients))
    assert lab_library(cfg)["scheduling-assistant"].client == "my-scheduler"


@pytest.mark.parametrize("option", ["scenarios", "clients"])
def test_a_missing_or_empty_directory_is_a_clear_error(tmp_path: Path, option: str) -> None:
    with pytest.raises(LabError, match="no such directory"):
        with_own_config(load_config({}), OwnConfig(**{option: tmp_path / "nope"}))
    with pytest.raises(LabError, match=r"no \*\.yaml files"):
        with_own_config(load_config({}), OwnConfig(**{option: tmp_path}))


def test_a_missing_policy_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no such file"):
        with_own_config(load_config({}), OwnConfig(policy=tmp_path / "nope.yaml"))
