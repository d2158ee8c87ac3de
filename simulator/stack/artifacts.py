"""Fetch and build the servers' artifacts into the cache, once: Keycloak's dist, HAPI's jar.

Keycloak comes from Maven Central (`org.keycloak:keycloak-quarkus-dist`, tar.gz) through Maven;
HAPI FHIR is built from `hapi/` with Maven. Both land under the cache directory keyed by version
(Keycloak) or by a hash of the launcher's sources (HAPI), so a second start neither downloads nor
builds, and works offline. Every step writes to a temporary name and renames when complete.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from labcore.config import LabConfig
from simulator.stack.errors import DownloadFailed
from simulator.stack.tools import find_maven

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
Say = Callable[[str], None]


def quiet(_: str) -> None:
    """A `Say` that says nothing."""


def _run_maven(args: list[str], what: str, cwd: Path | None = None) -> None:
    mvn = find_maven()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        proc = subprocess.run(
            [str(mvn), "-B", *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        lines = Path(log.name).read_text(errors="replace").splitlines()
        errors = [line for line in lines if "ERROR" in line][:12] or lines[-20:]
        raise DownloadFailed(
            f"{what} failed (mvn exit {proc.returncode}); Maven said:\n" + "\n".join(errors),
            f"full Maven log: {log.name}; check that Maven Central is reachable "
            "(settings in ~/.m2/settings.xml) and retry",
        )
    Path(log.name).unlink(missing_ok=True)


# ---- Keycloak -----------------------------------------------------------------------------
def keycloak_home(cfg: LabConfig) -> Path:
    return cfg.cache / "dist" / f"keycloak-{cfg.keycloak_version}"


def ensure_keycloak(cfg: LabConfig, say: Say = quiet) -> Path:
    """The unpacked Keycloak dist for `cfg.keycloak_version`, downloading it if needed."""
    home = keycloak_home(cfg)
    if (home / "bin" / "kc.sh").exists():
        return home
    downloads = cfg.cache / "downloads"
    archive = downloads / f"keycloak-quarkus-dist-{cfg.keycloak_version}.tar.gz"
    if not archive.exists():
        say(f"downloading Keycloak {cfg.keycloak_version} from Maven Central (~160 MB)")
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            _run_maven(
                [
                    "-q",
                    f"{DEPENDENCY_PLUGIN}:copy",
                    f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{cfg.keycloak_version}:tar.gz",
                    f"-DoutputDirectory={tmp}",
                ],
                f"downloading keycloak-quarkus-dist {cfg.keycloak_version}",
            )
            Path(tmp, archive.name).replace(archive)
    say(f"unpacking Keycloak {cfg.keycloak_version}")
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="tar")
        except (tarfile.TarError, OSError) as exc:
            archive.unlink(missing_ok=True)
            raise DownloadFailed(
                f"the Keycloak archive {archive} is damaged ({exc})", "run `fhirlab up` again"
            ) from exc
        unpacked = Path(tmp) / f"keycloak-{cfg.keycloak_version}"
        if not (unpacked / "bin" / "kc.sh").exists():
            raise DownloadFailed(f"{archive} does not contain keycloak-{cfg.keycloak_version}/")
        unpacked.replace(home)
    return home


# ---- jars built from this repository (HAPI launcher, Keycloak SMART provider) ------------
def sources_digest(project: Path) -> str:
    """A digest of everything that goes into a Maven project's jar (pom + sources)."""
    digest = hashlib.sha256()
    files = [project / "pom.xml", *sorted((project / "src").rglob("*"))]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(project)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def built_jar(cfg: LabConfig, project: Path, jar_name: str, what: str, say: Say = quiet) -> Path:
    """The jar of `project` for its current sources, built with Maven once and cached."""
    jar = cfg.cache / "jars" / project.name / sources_digest(project) / jar_name
    if jar.exists():
        return jar
    say(f"building {what} with Maven (the first build downloads its dependencies)")
    _run_maven(["-q", "-f", str(project / "pom.xml"), "package", "-DskipTests"], f"building {what}")
    built = project / "target" / jar_name
    if not built.exists():
        raise DownloadFailed(f"Maven finished but {built} is missing", f"check {project}/pom.xml")
    jar.parent.mkdir(parents=True, exist_ok=True)
    tmp = jar.with_suffix(".tmp")
    shutil.copyfile(built, tmp)
    tmp.replace(jar)
    return jar


def ensure_hapi_jar(cfg: LabConfig, say: Say = quiet) -> Path:
    return built_jar(cfg, cfg.repo / "hapi", "fhirlab-hapi.jar", "the HAPI FHIR launcher", say)


SMART_PROVIDER_JAR = "fhirlab-smart-provider.jar"


def install_smart_provider(cfg: LabConfig, keycloak: Path, say: Say = quiet) -> Path:
    """Put the SMART launch-context provider into Keycloak's providers/ (if it changed)."""
    jar = built_jar(
        cfg, cfg.repo / "keycloak" / "smart-provider", SMART_PROVIDER_JAR, "the SMART provider", say
    )
    target = keycloak / "providers" / SMART_PROVIDER_JAR
    if not target.exists() or target.read_bytes() != jar.read_bytes():
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(jar, tmp)
        tmp.replace(target)
    return target
