"""docs/reference/settings.md lists every `FHIRLAB_*` variable the lab reads, and nothing else.

The lab's side is every `FHIRLAB_` name in its source (the Python packages, the benchmarks, the
Makefile, the compose files and the Dockerfile). The tests' side is every `FHIRLAB_` name a file
under tests/ reads from the environment and the lab's source never names; the page lists those
under its "For tests" heading. A name in the source that ends in `_` is a fragment of a template
(`FHIRLAB_{service}_PORT`), not a variable.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "reference" / "settings.md"
TESTS_HEADING = "## For tests"

NAME = re.compile(r"FHIRLAB_[A-Z0-9_]+")
# os.environ["X"], os.environ.get("X"), os.getenv("X"), env.get("X") and the like
READ = re.compile(r"""(?:environ\s*\[|\.get\(|getenv\()\s*["'](FHIRLAB_[A-Z0-9_]+)["']""")

LAB_PACKAGES = ("labcore", "gateway", "seed", "simulator", "benchmarks")
LAB_FILES = ("Makefile", "docker-compose.yml", "compose.postgres.env", "Dockerfile")


def _names(text: str) -> set[str]:
    return {name for name in NAME.findall(text) if not name.endswith("_")}


def lab_sources() -> list[Path]:
    files = [REPO / name for name in LAB_FILES if (REPO / name).is_file()]
    for package in LAB_PACKAGES:
        files.extend(sorted((REPO / package).rglob("*.py")))
    return files


def lab_variables() -> dict[str, str]:
    """Variable name -> the first source file that names it."""
    found: dict[str, str] = {}
    for path in lab_sources():
        for name in sorted(_names(path.read_text(encoding="utf-8"))):
            found.setdefault(name, str(path.relative_to(REPO)))
    return found


def variables_only_tests_read(lab: set[str]) -> dict[str, str]:
    """Variables read under tests/ that the lab's source never names -> the first test file."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "tests").rglob("*.py")):
        for name in sorted(set(READ.findall(path.read_text(encoding="utf-8"))) - lab):
            found.setdefault(name, str(path.relative_to(REPO)))
    return found


def documented() -> tuple[set[str], set[str]]:
    """(names the page documents for the lab, names it documents for the tests)."""
    text = PAGE.read_text(encoding="utf-8")
    lab_part, heading, tests_part = text.partition(TESTS_HEADING)
    assert heading, f"{PAGE.relative_to(REPO)} has no {TESTS_HEADING!r} section"
    return _names(lab_part), _names(tests_part)


def _report(missing_from_page: dict[str, str], not_in_code: set[str], section: str) -> str:
    lines = []
    for name, where in sorted(missing_from_page.items()):
        lines.append(f"{name} (in {where}) is not documented in {section}")
    for name in sorted(not_in_code):
        lines.append(f"{name} is documented in {section} but nothing reads it")
    return "\n".join(lines)


def test_every_lab_variable_is_documented_and_every_documented_one_is_read() -> None:
    code = lab_variables()
    page, _ = documented()
    assert code, "no FHIRLAB_* variable found in the lab's source: is the scan looking there?"
    missing = {name: where for name, where in code.items() if name not in page}
    extra = page - set(code)
    assert not missing and not extra, "\n" + _report(missing, extra, "docs/reference/settings.md")


def test_every_test_only_variable_is_in_the_tests_section() -> None:
    code = lab_variables()
    tests = variables_only_tests_read(set(code))
    _, page = documented()
    missing = {name: where for name, where in tests.items() if name not in page}
    extra = page - set(tests)
    assert not missing and not extra, "\n" + _report(
        missing, extra, f"the {TESTS_HEADING!r} section of docs/reference/settings.md"
    )


def test_the_scan_finds_a_variable_read_in_a_template() -> None:
    # the regex pair the tests above rely on
    assert _names('env.get("FHIRLAB_HOME"); f"FHIRLAB_{x.upper()}_PORT"') == {"FHIRLAB_HOME"}
    assert READ.findall('os.environ.get("FHIRLAB_FUZZ_SHRINK") == "1"') == ["FHIRLAB_FUZZ_SHRINK"]
    assert READ.findall('lambda name: "FHIRLAB_WEB_PORT"') == []
