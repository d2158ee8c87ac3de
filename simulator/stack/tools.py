"""Find the external programs the native stack needs: a supported JDK, Maven, tar.

Keycloak 26.5 supports Java 17 and 21; HAPI FHIR 8.8 on Spring Boot 3.5 runs on 17+.
We look at JAVA_HOME, the JDKs under /usr/lib/jvm and the `java` on PATH, and take the
first whose major version the server supports, in the server's order of preference.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from simulator.stack.errors import ToolMissing

JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))
_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


@cache
def java_major(java: Path) -> int | None:
    """The major version `java -version` reports, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_RE.search(out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def candidate_java_homes(
    env: dict[str, str] | None = None, roots: Iterable[Path] = JVM_ROOTS
) -> list[Path]:
    """JDK homes worth trying, JAVA_HOME first, without duplicates."""
    env = dict(os.environ) if env is None else env
    found: list[Path] = []
    if env.get("JAVA_HOME"):
        found.append(Path(env["JAVA_HOME"]))
    for root in roots:
        if root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if (p / "bin" / "java").exists()))
    on_path = shutil.which("java", path=env.get("PATH"))
    if on_path:
        found.append(Path(on_path).resolve().parent.parent)
    unique: list[Path] = []
    seen: set[Path] = set()
    for home in found:
        real = home.resolve()
        if real not in seen and (real / "bin" / "java").exists():
            seen.add(real)
            unique.append(real)
    return unique


def find_jdk(
    server: str,
    supported: Sequence[int],
    env: dict[str, str] | None = None,
    roots: Iterable[Path] = JVM_ROOTS,
) -> Jdk:
    """The best installed JDK for `server`, by the order of `supported` (most preferred first)."""
    seen: dict[int, Path] = {}
    for home in candidate_java_homes(env, roots):
        major = java_major(home / "bin" / "java")
        if major is not None:
            seen.setdefault(major, home)
    for major in supported:
        if major in seen:
            return Jdk(seen[major], major)
    have = ", ".join(f"Java {m} at {h}" for m, h in sorted(seen.items())) or "no Java at all"
    want = " or ".join(str(m) for m in supported)
    raise ToolMissing(
        f"{server} needs Java {want}; found {have}",
        f"install a JDK {supported[0]} (e.g. `apt-get install openjdk-{supported[0]}-jdk-headless`)"
        " or point JAVA_HOME at one",
    )


def find_maven(env: dict[str, str] | None = None) -> Path:
    """The `mvn` executable, or a clear error."""
    env = dict(os.environ) if env is None else env
    mvn = shutil.which("mvn", path=env.get("PATH"))
    if not mvn:
        raise ToolMissing(
            "Maven (`mvn`) is not on PATH; the lab builds HAPI FHIR and downloads Keycloak with it",
            "install Maven 3.8+ (e.g. `apt-get install maven`)",
        )
    return Path(mvn)
