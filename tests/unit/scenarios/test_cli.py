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
