"""Every repository path the docs name exists.

Checked in README.md, docs/**/*.md and the READMEs under scenarios/, hapi/ and
keycloak/smart-provider/, outside fenced code blocks:

- markdown links (and images) to relative targets, resolved against the page's folder; a link's
  `#anchor` into a markdown page must be one of that page's headings (GitHub's slugs);
- inline code that looks like a repository path: a token with a `/` whose first segment is one
  of the repository's top-level names (`gateway/policy.yaml`, `tests/x.py::test_y`,
  `gateway/current.py:stored_version`). Placeholders (`keycloak/clients/<id>.yaml`) and globs
  (`keycloak/clients/*.yaml`) must match at least one path.

Paths under RUNTIME_PREFIXES are what the lab writes while it runs (the lab directory, results,
the virtualenv, build output) and are not checked. URLs and absolute paths are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DOC_GLOBS = (
    "README.md",
    "docs/**/*.md",
    "scenarios/README.md",
    "hapi/README.md",
    "keycloak/smart-provider/README.md",
)

# written at run time or by a build, so absent from a fresh checkout
RUNTIME_PREFIXES = (
    ".lab/",
    ".venv/",
    "results/",
    "hapi/target/",
    "keycloak/smart-provider/target/",
)

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
PLACEHOLDER = re.compile(r"<[^<>/]*>|\{[^{}/]*\}")
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Reference:
    doc: Path
    line: int
    text: str  # as written
    kind: str  # "link" or "code"

    def __str__(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}: {self.kind} {self.text!r}"


def docs() -> list[Path]:
    found: set[Path] = set()
    for pattern in DOC_GLOBS:
        found.update(path for path in REPO.glob(pattern) if path.is_file())
    return sorted(found)


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces
    to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def top_level_names() -> set[str]:
    return {entry.name for entry in REPO.iterdir() if not entry.name.startswith(".")}


def path_tokens(code: str) -> list[str]:
    """The tokens of an inline code span that may be repository paths."""
    tokens = []
    for raw in code.split():
        token = raw.strip("\"'(),;")
        token = token.split("::", 1)[0]  # a pytest node id names its file
        if not token or "/" not in token or "://" in token or "=" in token:
            continue
        if token.startswith(("/", "~", "$", "-", "@")):
            continue
        head, sep, _ = token.partition(":")  # gateway/current.py:stored_version
        if sep and "/" in head:
            token = head
        tokens.append(token.rstrip(".,:"))
    return tokens


def references(path: Path, top: set[str]) -> list[Reference]:
    found: list[Reference] = []
    for number, line in prose_lines(path):
        for match in LINK.finditer(line):
            found.append(Reference(path, number, match.group(1), "link"))
        for match in CODE.finditer(LINK.sub("", line)):
            for token in path_tokens(match.group(2)):
                first = token.split("/", 1)[0]
                if first in top or token.startswith("./"):
                    found.append(Reference(path, number, token, "code"))
    return found


def problem(ref: Reference) -> str | None:
    """Why the reference does not resolve, or None."""
    target = ref.text
    if ref.kind == "link":
        if SCHEME.match(target):
            return None  # a URL (http:, https:, mailto:)
        target, _, anchor = target.partition("#")
        base = ref.doc.parent if target else ref.doc
        resolved = (base / target).resolve() if target else ref.doc
    else:
        anchor = ""
        if target.startswith(RUNTIME_PREFIXES):
            return None
        resolved = REPO / target
    try:
        relative = resolved.relative_to(REPO).as_posix()
    except ValueError:
        return "points outside the repository"
    if ref.kind == "link" and f"{relative}/".startswith(RUNTIME_PREFIXES):
        return None
    pattern = PLACEHOLDER.sub("*", relative)
    if GLOB_CHARS.search(pattern):
        return None if any(REPO.glob(pattern)) else f"matches nothing ({pattern})"
    if not resolved.exists():
        return f"{relative} does not exist"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{relative} has no heading with the anchor #{anchor}"
    return None


def all_references() -> list[Reference]:
    top = top_level_names()
    return [ref for doc in docs() for ref in references(doc, top)]


def test_the_docs_are_found() -> None:
    names = {path.relative_to(REPO).as_posix() for path in docs()}
    assert {"README.md", "docs/README.md", "docs/reference/settings.md"} <= names


def test_every_path_the_docs_name_exists() -> None:
    failures = [f"{ref}: {why}" for ref in all_references() if (why := problem(ref))]
    assert not failures, "\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("gateway/policy.yaml", ["gateway/policy.yaml"]),
        (".venv/bin/python benchmarks/gateway_cost.py --seconds 20", [
            ".venv/bin/python", "benchmarks/gateway_cost.py"]),
        ("tests/integration/test_gateway.py::test_c09_revoked_token", [
            "tests/integration/test_gateway.py"]),
        ("gateway/current.py:stored_version", ["gateway/current.py"]),
        ("http://localhost:8080/fhir", []),
        ("FHIRLAB_HOME=.lab/test", []),
        ("patient/*.read", ["patient/*.read"]),
    ],
)  # fmt: skip
def test_path_tokens(code: str, expected: list[str]) -> None:
    assert path_tokens(code) == expected


def test_slug_is_githubs() -> None:
    assert slug("FHIR AuditEvents in HAPI (`audit.fhir_audit_events`)") == (
        "fhir-auditevents-in-hapi-auditfhir_audit_events"
    )
    assert slug("2026-11-29 — the load matrix") == "2026-11-29--the-load-matrix"
    assert slug("`python -m gateway`") == "python--m-gateway"
