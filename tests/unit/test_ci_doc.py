"""docs/ci.md's CI job is valid YAML and every `fhirlab` command in it exists with the options it
uses, so the job a user copies runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main
import yaml

from simulator.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/ci.md has no yaml block"
    found = []
    for block in blocks:
        job = yaml.safe_load(block)
        for spec in job["jobs"].values():
            for step in spec["steps"]:
                for part in str(step.get("run", "")).split("&&"):
                    words = shlex.split(part)
                    if words and words[0].endswith("bin/fhirlab"):
                        found.append(words[1:])
    return found


def test_the_job_runs_fhirlab_commands_that_exist_with_their_options() -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    commands = _commands()
    assert {c[0] for c in commands} >= {"lab", "compare", "down"}
    for words in commands:
        command = root.commands.get(words[0])
        assert command is not None, f"fhirlab {words[0]}: no such command"
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        used = [w.split("=")[0] for w in words[1:] if w.startswith("--")]
        unknown = [w for w in used if w not in known]
        assert not unknown, f"fhirlab {words[0]}: unknown options {unknown}"


def test_the_junit_file_is_the_one_the_report_step_reads() -> None:
    text = DOC.read_text()
    junit = re.search(r"--junit (\S+\.xml)", text)
    assert junit is not None
    assert f"report_paths: {junit.group(1)}" in text
