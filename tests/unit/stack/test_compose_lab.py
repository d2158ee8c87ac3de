"""docker-compose.yml as a training lab: `docker compose up` alone gives a provisioned, seeded lab.

No Docker engine runs here, so the lab is checked statically, with the values compose fills in
from .env: the one-shot jobs and their chain; that together they do what `fhirlab lab` does before
its checks (each job's command, and the runner's, run through the real CLI with the servers
faked); that every command is one the CLI or the gateway accepts; one issuer and one audience for
the browser on the host and for the lab inside; .env, read by compose and nothing else; the ports.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
from typer.testing import CliRunner, Result

import gateway.__main__ as gateway_main
import seed.lab
import simulator.cli.clients_cmd
import simulator.cli.lab_cmd
import simulator.cli.seed_cmd
from labcore.config import REPO_ROOT, load_config
from labcore.tenants import load_tenants
from simulator.cli import app
from simulator.exercises.workspace import workspace
from simulator.stack import lab as stack
from simulator.stack.services import gateway_spec
from tests.unit.stack.test_compose import (
    COMPOSE,
    dotenv,
    effective_compose,
    native_config,
    references,
)

COMPLETED = "service_completed_successfully"
HEALTHY = "service_healthy"
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
SEED_USERS = inspect.signature(seed.lab.seed_lab).parameters["users_share"].default


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return effective_compose()


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def jobs(compose: dict[str, Any]) -> set[str]:
    """The one-shot jobs `docker compose up` runs: services outside any profile that run a
    `fhirlab` command (the gateway runs `python -m gateway`, the runner has a profile)."""
    return {
        name
        for name, s in services(compose).items()
        if not s.get("profiles") and (s.get("command") or [None])[0] == "fhirlab"
    }


def chain(compose: dict[str, Any], end: str = "gateway") -> list[str]:
    """The services `end` waits for to complete, one behind the other, the first first."""
    order: list[str] = []
    name = end
    while True:
        depends = services(compose)[name].get("depends_on") or {}
        done = [dep for dep, how in depends.items() if how.get("condition") == COMPLETED]
        if not done:
            return order
        assert len(done) == 1, f"{name} waits for {done} to complete: one chain expected"
        name = done[0]
        assert name not in order, f"{name} waits for itself"
        order.insert(0, name)


def option(command: list[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    return value


def parse_fhirlab(args: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(subcommand path, parameters) of `fhirlab ARGS` as the CLI parses them, without running
    them. An unknown subcommand raises LookupError; an unknown option or a value the option
    refuses raises the CLI's usage error."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "commands"):  # a group: the next word names a subcommand
        if not rest or rest[0] not in command.commands:
            raise LookupError(f"fhirlab {' '.join(path)} has no subcommand {rest[:1]}")
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    context = command.make_context(" ".join(["fhirlab", *path]), rest)
    return tuple(path), dict(context.params)


def start_gateway(command: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the gateway's command as far as the server start: what it would serve with."""
    assert command[:3] == ["python", "-m", "gateway"], command
    started: dict[str, Any] = {}

    def create_app(settings: Any, *args: Any, config: Any = None, **kwargs: Any) -> object:
        started.update(settings=settings, config=config)
        return object()

    monkeypatch.setattr(gateway_main, "create_app", create_app)
    monkeypatch.setattr(gateway_main.uvicorn, "run", lambda app, **options: started.update(options))
    gateway_main.main(command[3:])
    return started


# --- the jobs ------------------------------------------------------------------------------------


def test_up_runs_the_jobs_in_one_chain_before_the_gateway(compose: dict[str, Any]) -> None:
    order = chain(compose)
    assert order, (
        "the gateway waits for no job: `docker compose up` would neither seed nor provision"
    )
    # every job is in the chain the gateway waits for: `up --wait` then counts it (and fails when
    # it fails) instead of taking its exit for a crash
    assert set(order) == jobs(compose)
    for name in order:
        assert services(compose)[name].get("restart", "no") == "no", f"{name} runs once"
    first = services(compose)[order[0]]
    assert first["depends_on"]["keycloak"]["condition"] == HEALTHY


def test_running_the_runner_does_not_run_the_jobs_again(compose: dict[str, Any]) -> None:
    """`docker compose run` starts what the service depends on, however far: an exited job again
    (a whole provisioning and seed before each command). The runner depends on nothing but the
    namespace it joins; `fhirlab` waits for the servers itself."""
    runner = services(compose)["runner"]
    assert runner.get("depends_on") is None
    assert runner["network_mode"] == "service:keycloak"
    assert not services(compose)["keycloak"].get("depends_on")


class Stop(Exception):
    """Raised by the fake seeder: what follows the seed needs real servers."""


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What the lab does to the servers, recorded in place of doing it."""
    done: list[tuple[Any, ...]] = []

    def wait_external(cfg: Any, names: list[str], tick: Any) -> dict[str, float]:
        urls = stack.external_health_urls(cfg)
        done.extend(("ready", name, urls[name]) for name in names)
        return dict.fromkeys(names, 0.0)

    def provision_tenants(cfg: Any) -> dict[str, Any]:
        done.append(("realms", cfg.keycloak_url, cfg.gateway_base_url))
        return {}

    def apply_profiles(cfg: Any, client_ids: Any = ()) -> list[Any]:
        done.append(("clients", cfg.keycloak_url, cfg.clients_dir, tuple(client_ids)))
        return []

    def seed_lab(cfg: Any, options: Any, *, users_share: Any = SEED_USERS, **_: Any) -> Any:
        done.append(("seed", cfg.hapi_base_url, cfg.keycloak_url, options.to_dict(), users_share))
        raise Stop

    monkeypatch.setattr(stack, "wait_external", wait_external)
    monkeypatch.setattr(stack, "provision_tenants", provision_tenants)
    monkeypatch.setattr(stack, "status", lambda cfg: [])
    for module in (simulator.cli.lab_cmd, simulator.cli.clients_cmd):
        monkeypatch.setattr(module, "apply_profiles", apply_profiles)
    for module in (simulator.cli.lab_cmd, simulator.cli.seed_cmd):
        monkeypatch.setattr(module, "seed_lab", seed_lab)
    for name in [name for name in os.environ if name.startswith("FHIRLAB_")]:
        monkeypatch.delenv(name)
    return done


def run_service(compose: dict[str, Any], name: str, home: Path) -> Result:
    """The service's `fhirlab` command with its environment; `home` is the lab-home volume."""
    service = services(compose)[name]
    assert service["command"][0] == "fhirlab", service["command"]
    env = {**service["environment"], "FHIRLAB_HOME": str(home)}
    return CliRunner().invoke(app, service["command"][1:], env=env)


def test_the_jobs_do_what_fhirlab_lab_does_before_its_checks(
    compose: dict[str, Any], steps: list[tuple[Any, ...]], tmp_path: Path
) -> None:
    for name in chain(compose):
        result = run_service(compose, name, tmp_path)
        ended = result.exit_code == 0 or isinstance(result.exception, Stop)
        assert ended, f"{name}: {result.exception!r}\n{result.output}"
    by_jobs = list(steps)
    steps.clear()
    result = run_service(compose, "runner", tmp_path)
    assert isinstance(result.exception, Stop), f"{result.exception!r}\n{result.output}"
    # the lab waits for the gateway too; compose starts the gateway after the jobs and waits for
    # its health check (`up --wait`)
    after = {n for n, s in services(compose).items() if "healthcheck" in s and chain(compose, n)}
    assert after == {"gateway"}
    by_lab = [s for s in steps if not (s[0] == "ready" and s[1] in after)]
    assert {s[0] for s in by_lab} == {"ready", "realms", "clients", "seed"}, by_lab
    # the same steps in the same order, with the same URLs, client profiles and population
    # (.env seeds what `fhirlab lab` seeds on an empty lab)
    assert by_jobs == by_lab


def test_the_jobs_share_the_lab_directory_with_the_runner(compose: dict[str, Any]) -> None:
    """The runner signs in as the clients with the keys `clients` wrote, and finds the seed
    record `seed` wrote (so it does not seed again): one named volume at FHIRLAB_HOME."""
    home = re.search(r"^ENV FHIRLAB_HOME=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert home, "the image sets FHIRLAB_HOME"
    for name in [*chain(compose), "runner"]:
        service = services(compose)[name]
        assert f"lab-home:{home.group(1)}" in service["volumes"], name
        assert service["environment"].get("FHIRLAB_HOME", home.group(1)) == home.group(1)
    assert "lab-home" in compose["volumes"]
    # a new named volume takes the owner of its mount point in the image: the lab's user
    assert re.search(r'mkdir -p .*"\$FHIRLAB_HOME"', DOCKERFILE)
    assert re.search(r'chown lab .*"\$FHIRLAB_HOME"', DOCKERFILE)


def test_the_runner_is_on_demand_and_writes_to_the_hosts_results(compose: dict[str, Any]) -> None:
    runner = services(compose)["runner"]
    assert runner["profiles"] == ["runner"], "`docker compose up` must not start the main job"
    path, params = parse_fhirlab(runner["command"][1:])
    assert path == ("lab",)
    workdir = re.search(r"^WORKDIR (\S+)$", DOCKERFILE, re.MULTILINE)
    assert workdir
    results = PurePosixPath(workdir.group(1)) / params["results"]
    assert f"./results:{results}" in runner["volumes"]
    assert re.search(rf"chown lab .*{re.escape(str(results))}", DOCKERFILE)
    # the exercise workspaces (`fhirlab exercise start N`) on the host, where the trainee edits
    home = re.search(r"^ENV FHIRLAB_HOME=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert home
    cfg = load_config({"FHIRLAB_HOME": home.group(1)})
    workspaces = workspace(cfg, SimpleNamespace(name="01-any")).parent  # type: ignore[arg-type]
    assert f"./.lab/exercises:{workspaces}" in runner["volumes"]


# --- the commands --------------------------------------------------------------------------------


def test_every_command_is_one_the_cli_accepts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dotenv()
    parsed = {
        name: parse_fhirlab(s["command"][1:])
        for name, s in services(compose).items()
        if (s.get("command") or [None])[0] == "fhirlab"
    }
    assert parsed.keys() >= {*jobs(compose), "runner"}
    seed_path, seed_params = parsed["seed"]
    assert seed_path == ("seed",)
    assert seed_params["patients"] == int(env["FHIRLAB_PATIENTS"])
    assert seed_params["seed_"] == int(env["FHIRLAB_SEED"])
    started = start_gateway(services(compose)["gateway"]["command"], monkeypatch)
    assert started["port"] == int(env["FHIRLAB_GATEWAY_PORT"])
    assert str(started["config"].audit_dir) == "/audit"
    assert "audit:/audit" in services(compose)["gateway"]["volumes"]


@pytest.mark.parametrize(
    "args",
    [
        ["seed", "--patient=3"],
        ["seed", "--patients=many"],
        ["seed", "--patients=-1"],
        ["clients", "aply"],
        ["lab", "--result", "x"],
    ],
)
def test_a_command_the_cli_refuses_is_caught(args: list[str]) -> None:
    with pytest.raises((LookupError, typer.TyperException)):
        parse_fhirlab(args)


def test_a_gateway_option_it_refuses_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):
        start_gateway(
            ["python", "-m", "gateway", "--keycloak=http://x", "--publicbase=y"], monkeypatch
        )


def test_the_gateway_takes_the_native_options(compose: dict[str, Any]) -> None:
    """The gateway the native lab would start for these URLs and this port."""
    gateway = services(compose)["gateway"]
    port = str(native_config().ports.gateway)
    cfg = load_config({**gateway["environment"], "FHIRLAB_GATEWAY_PORT": port})
    native = list(gateway_spec(cfg).command[3:])
    native_options = dict(zip(native[::2], native[1::2], strict=True))
    options = dict(arg.split("=", 1) for arg in gateway["command"][3:])
    assert options.keys() == native_options.keys()
    for name in ("--port", "--upstream", "--keycloak", "--public-base"):
        assert options[name] == native_options[name], name


# --- host names: one issuer for the browser and the lab ------------------------------------------


def test_one_issuer_and_one_audience_for_the_browser_and_the_lab(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    every = services(compose)
    keycloak = every["keycloak"]
    hostname = option(keycloak["command"], "--hostname")
    url = urlsplit(hostname)
    assert url.hostname == "localhost", "the host's browser reaches Keycloak at localhost"
    assert option(keycloak["command"], "--http-port") == str(url.port)
    assert f"127.0.0.1:{url.port}:{url.port}" in keycloak["ports"]
    # `localhost` means Keycloak to every service that uses that name: they share its namespace
    talk_to_keycloak = [
        n for n, s in every.items() if "FHIRLAB_KEYCLOAK_URL" in (s.get("environment") or {})
    ]
    assert set(talk_to_keycloak) >= {*jobs(compose), "gateway", "runner"}
    for name in talk_to_keycloak:
        assert every[name]["network_mode"] == "service:keycloak", name
        assert every[name]["environment"]["FHIRLAB_KEYCLOAK_URL"] == hostname, name
    # the gateway expects the issuer Keycloak writes into every token, wherever it was obtained
    started = start_gateway(every["gateway"]["command"], monkeypatch)
    realms = [t.realm for t in load_tenants(REPO_ROOT).tenants]
    assert [i.issuer for i in started["config"].issuers] == [
        f"{hostname}/realms/{r}" for r in realms
    ]
    audience = every["gateway"]["environment"]["FHIRLAB_GATEWAY_URL"]
    assert started["config"].public_base == audience
    port = urlsplit(audience).port
    assert urlsplit(audience).hostname == "localhost"
    assert f"127.0.0.1:{port}:{port}" in keycloak["ports"], "published by the namespace's owner"
    assert started["host"] == "0.0.0.0" and started["port"] == port
    # the native lab on the same ports uses the same issuer and audience
    cfg = native_config()
    assert (hostname, audience) == (cfg.keycloak_url, cfg.gateway_base_url)
    # one namespace, so its servers need distinct ports; HAPI keeps its own (it listens on 8080)
    management = option(keycloak["command"], "--http-management-port")
    assert len({url.port, port, int(management)}) == 3
    assert "network_mode" not in every["hapi"]


def test_a_port_set_in_env_moves_every_url_that_names_it() -> None:
    moved = effective_compose({"FHIRLAB_GATEWAY_PORT": "18080", "FHIRLAB_KEYCLOAK_PORT": "18180"})
    every = services(moved)
    assert every["keycloak"]["ports"] == ["127.0.0.1:18180:18180", "127.0.0.1:18080:18080"]
    assert option(every["keycloak"]["command"], "--hostname") == "http://localhost:18180"
    assert option(every["gateway"]["command"], "--keycloak") == "http://localhost:18180"
    assert option(every["gateway"]["command"], "--public-base") == "http://localhost:18080/fhir"
    assert every["runner"]["environment"]["FHIRLAB_GATEWAY_URL"] == "http://localhost:18080/fhir"
    assert ":18080/_gateway/ready" in " ".join(every["gateway"]["healthcheck"]["test"])


# --- .env and the ports --------------------------------------------------------------------------


def test_env_sets_only_what_compose_uses_and_compose_has_a_default_for_everything() -> None:
    env = dotenv()
    used = references(COMPOSE.read_text(encoding="utf-8"))
    assert env and used
    unused = set(env) - {name for name, _, _ in used}
    assert not unused, f".env sets {sorted(unused)}, which docker-compose.yml never uses"
    for name, operator, default in used:
        # a default for each: `--env-file compose.postgres.env` replaces .env rather than adding
        assert operator == ":-", f"${{{name}}} in docker-compose.yml has no default"
        if name in env:
            assert default == env[name], (
                f"{name}: {default!r} in docker-compose.yml, .env {env[name]!r}"
            )


def test_env_reaches_nothing_but_compose() -> None:
    """No package loads .env (python-dotenv, pydantic-settings' env_file): the native lab sees
    FHIRLAB_* only from its environment, so .env cannot move the native ports."""
    lab_sources = [REPO_ROOT / "Makefile", REPO_ROOT / "pyproject.toml"]
    for package in ("labcore", "gateway", "seed", "simulator", "benchmarks"):
        lab_sources.extend((REPO_ROOT / package).rglob("*.py"))
    loaders = re.compile(r"dotenv|env_file|['\"]\.env['\"]")
    found = [str(p.relative_to(REPO_ROOT)) for p in lab_sources if loaders.search(p.read_text())]
    assert not found, f"these read .env: {found}"
    names = sorted(dotenv())
    code = (
        "import os, gateway.__main__, seed.lab, simulator.cli\n"
        "from labcore.config import load_config\n"
        "cfg = load_config()\n"
        f"print(sorted(set(os.environ) & set({names!r})), cfg.ports.gateway, cfg.ports.keycloak)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRLAB_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "8080", "8180"], done.stdout


def test_ports_are_published_on_loopback_only_and_the_same_inside(compose: dict[str, Any]) -> None:
    env = dotenv()
    published: dict[int, str] = {}
    for name, service in services(compose).items():
        for mapping in service.get("ports", []):
            assert isinstance(mapping, str), f"{name}: use the short syntax IP:HOST:CONTAINER"
            address, host, container = mapping.split(":")
            assert address == "127.0.0.1", f"{name} publishes {mapping} beyond this machine"
            assert host == container, f"{name}: one URL inside and outside needs one port"
            published[int(host)] = name
    wanted = {int(env["FHIRLAB_GATEWAY_PORT"]), int(env["FHIRLAB_KEYCLOAK_PORT"])}
    assert set(published) == wanted, published
