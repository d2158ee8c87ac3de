"""`fhirlab scenarios validate`: the library passes; a broken file fails with its problems."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from simulator.cli.scenarios_cmd import app

runner = CliRunner()


def test_library_validates() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output


def test_broken_file_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad-one.yaml"
    bad.write_text("schema_version: 1\nname: bad-one\nkind: nice\n")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3: kind:" in result.output
    assert "'good', 'misconfigured' or 'hostile'" in result.output


def test_a_scenario_for_your_own_client_validates_with_your_clients(tmp_path: Path) -> None:
    scenario = tmp_path / "my-scenario.yaml"
    text = Path("scenarios/scheduling-assistant.yaml").read_text()
    scenario.write_text(
        text.replace("name: scheduling-assistant", "name: my-scenario").replace(
            "client: scheduling-assistant", "client: my-scheduler"
        )
    )
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 1 and "my-scheduler" in result.output, result.output
    clients = tmp_path / "clients"
    clients.mkdir()
    profile = Path("keycloak/clients/scheduling-assistant.yaml").read_text()
    (clients / "my-scheduler.yaml").write_text(
        profile.replace("client_id: scheduling-assistant", "client_id: my-scheduler")
    )
    result = runner.invoke(app, ["validate", str(scenario), "--clients", str(clients)])
    assert result.exit_code == 0, result.output
