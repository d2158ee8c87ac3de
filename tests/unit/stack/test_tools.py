"""Finding a JDK and Maven, and the errors when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator.stack.errors import ToolMissing
from simulator.stack.tools import find_jdk, find_maven, java_major


def fake_jdk(root: Path, name: str, version_line: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


def test_missing_java_names_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as caught:
        find_jdk("Keycloak", (21, 17), env={"PATH": str(tmp_path)}, roots=[tmp_path / "none"])
    assert "Keycloak needs Java 21 or 17" in caught.value.message
    assert "no Java at all" in caught.value.message
    assert "JAVA_HOME" in caught.value.hint


def test_unsupported_java_lists_what_was_found(tmp_path: Path) -> None:
    fake_jdk(tmp_path, "jdk-11", 'openjdk version "11.0.2" 2019-01-15')
    with pytest.raises(ToolMissing) as caught:
        find_jdk("Keycloak", (21, 17), env={"PATH": ""}, roots=[tmp_path])
    assert "Java 11 at" in caught.value.message


def test_preference_order_wins_over_discovery_order(tmp_path: Path) -> None:
    fake_jdk(tmp_path, "a-jdk-17", 'openjdk version "17.0.15" 2025-04-15')
    fake_jdk(tmp_path, "b-jdk-21", 'openjdk version "21.0.4" 2024-07-16')
    jdk = find_jdk("Keycloak", (21, 17), env={"PATH": ""}, roots=[tmp_path])
    assert jdk.major == 21
    assert jdk.home.name == "b-jdk-21"


def test_java_8_style_version_string(tmp_path: Path) -> None:
    home = fake_jdk(tmp_path, "jdk8", 'java version "1.8.0_392"')
    assert java_major(home / "bin" / "java") == 8


def test_missing_maven(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as caught:
        find_maven(env={"PATH": str(tmp_path)})
    assert "Maven" in caught.value.message


def test_real_machine_has_a_jdk_for_both_servers() -> None:
    """The machine the lab runs on (CI included) must have a supported JDK."""
    assert find_jdk("HAPI FHIR", (17, 21), env=dict(os.environ)).major in (17, 21)
