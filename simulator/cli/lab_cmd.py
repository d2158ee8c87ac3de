"""`fhirlab lab`: the lab's main job on the embedded defaults.

Bring the stack up if needed, provision the client profiles, seed the synthetic population if the
lab holds none, check the stack end to end (FHIR through the gateway, each tenant realm, a real
SMART backend-services token), replay the scenario library with the controls on (exit 3 if an
expectation fails) and off (the blast radius), measure the controls' cost under load, compare where
C01-C05 and C11 are enforced (the gateway, the authorization server, both), and write one results
directory.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from labcore.config import LabConfig, load_config
from labcore.errors import LabError
from labcore.tenants import load_tenants
from seed import PopulationOptions
from seed.lab import seed_lab, seeded_options
from simulator.authserver.apply import apply_profiles, own_profiles_restored, select_profiles
from simulator.authserver.issuance_cost import measure_issuance_cost
from simulator.authserver.placement import Placement
from simulator.cli.console import err, out
from simulator.cli.own_config import (
    ClientsDir,
    OwnConfig,
    PolicyFile,
    ScenariosDir,
    with_own_config,
)
from simulator.cli.run_cmd import (
    EXIT_EXPECTATION_FAILED,
    JunitFile,
    blast_table,
    replay_table,
    replay_with_baseline,
)
from simulator.cli.seed_cmd import DEFAULT_PATIENTS, DEFAULT_SEED
from simulator.cli.stack_cmds import start_stack
from simulator.load import LoadOptions, RichProgress, load_table, run_matrix
from simulator.load.matrix import DIRECT, configuration, full_matrix
from simulator.load.rounds import MIN_SLICE_S
from simulator.replay.library import LibraryReplay
from simulator.replay.summary import blast_radius
from simulator.results import ResultsDirectory, write_results
from simulator.results.junit import junit_for_results
from simulator.results.where import WHERE_SCENARIOS, where_to_enforce
from simulator.smart.auth import PrivateKeyJwt
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.smart.errors import SmartError
from simulator.smart.keys import client_key
from simulator.stack import lab as stack

# The lab's load matrix: the good vendors' work (their requests pass every control, so each
# configuration serves the same work and the difference is the control's cost), at a fixed pace.
LAB_LOAD_SCENARIOS = (
    "scheduling-assistant",
    "intake-assistant",
    "population-analytics",
    "triage-chatbot-public",
)
# 12 users at 8 requests/s: ~96 requests/s offered, a third of what the gateway with every control
# serves at saturation here (benchmarks/saturation.py), so HAPI stays far from saturation while
# every configuration gets enough requests of each kind for its interval (docs/explanation/load.md)
LAB_LOAD_USERS = 12
LAB_LOAD_PACE = 8.0  # requests per second per user
DEFAULT_LOAD_SECONDS = 6.0
# four rounds: every configuration in every round, so the cost intervals hold the drift between
# rounds (simulator/load/cost.py draws the rounds); fewer when the slices would be too short
LAB_LOAD_ROUNDS = 4


def lab_load_options(seconds: float, library: Collection[str] | None = None) -> LoadOptions:
    """The whole matrix and `direct` (HAPI FHIR itself: the whole gateway's cost), paced, so
    the requests are interleaved (latency mode). With your own `library` lacking the lab's
    load scenarios, every scenario of it with load enabled."""
    rounds = LAB_LOAD_ROUNDS if seconds / LAB_LOAD_ROUNDS >= MIN_SLICE_S else None
    matrix = (*full_matrix(), configuration(DIRECT))
    names = tuple(n for n in LAB_LOAD_SCENARIOS if library is None or n in library)
    return LoadOptions(
        seconds=seconds, scenarios=names or None, pace=LAB_LOAD_PACE, rounds=rounds,
        users=LAB_LOAD_USERS,
        matrix=matrix,
    )  # fmt: skip


def smoke_checks(cfg: LabConfig) -> list[dict[str, object]]:
    """End-to-end checks of the running stack; each is a dict with id, status, evidence."""
    checks: list[dict[str, object]] = []
    with httpx.Client(timeout=30) as http:
        meta = http.get(f"{cfg.gateway_base_url}/metadata")
        ok = meta.status_code == 200 and meta.json().get("fhirVersion") == "4.0.1"
        checks.append(
            {
                "id": "stack.fhir-through-gateway",
                "status": "pass" if ok else "fail",
                "evidence": f"GET /fhir/metadata via gateway -> {meta.status_code}, "
                f"fhirVersion {meta.json().get('fhirVersion') if meta.status_code == 200 else '-'}",
            }
        )
        for tenant in load_tenants(cfg.repo).ids:
            issuer = cfg.issuer(tenant)
            disco = http.get(f"{issuer}/.well-known/openid-configuration")
            ok = disco.status_code == 200 and disco.json().get("issuer") == issuer
            checks.append(
                {
                    "id": f"stack.keycloak-realm.{tenant}",
                    "status": "pass" if ok else "fail",
                    "evidence": f"GET {issuer}/.well-known/openid-configuration -> "
                    f"{disco.status_code}",
                }
            )
    return checks


def smart_checks(cfg: LabConfig) -> list[dict[str, object]]:
    """A real SMART backend-services token for the approved analytics client."""
    profile = select_profiles(cfg, ["population-analytics"])[0]
    tenant = profile.tenants[0]
    server = discover_issuer(cfg.issuer(tenant))
    auth = PrivateKeyJwt(profile.client_id, client_key(cfg.home, tenant, profile.client_id))
    with SmartClient(server, auth) as client:
        try:
            token = client.client_credentials(" ".join(profile.scopes))
        except SmartError as exc:
            return [{"id": "smart.backend-services", "status": "fail", "evidence": str(exc)}]
    ok = token.lifetime_s == profile.access_token_lifetime_s and not token.has_refresh_token
    return [
        {
            "id": "smart.backend-services",
            "status": "pass" if ok else "fail",
            "evidence": f"{profile.client_id}: token for '{token.scope}', lifetime "
            f"{token.lifetime_s} s (profile {profile.access_token_lifetime_s} s), "
            f"refresh token: {token.has_refresh_token}",
        }
    ]


def where_table(rows: list[dict[str, Any]]) -> Table:
    """Per control: its verdict and what the app reached, at each placement."""
    table = Table(title="where to enforce: the control's verdict, and patients reached")
    for column in ("control", "scenario", "gateway", "as", "both"):
        table.add_column(column)
    for row in rows:
        cells = []
        for placement in ("gateway", "as", "both"):
            p = row["placements"].get(placement)
            if p is None:
                cells.append("-")
                continue
            colour = "green" if p["verdict"] == "held" else "red"
            cells.append(f"[{colour}]{p['verdict']}[/], {p['patients']} patients")
        table.add_row(row["control"], row["scenario"], *cells)
    return table


def compare_placements(
    cfg: LabConfig,
    run_dir: Path,
    judged: LibraryReplay,
    load: dict[str, Any] | None,
    *,
    own_gateway: bool = False,
) -> dict[str, Any]:
    """The "where to enforce" section: the scenarios of C01-C05 and C11 (those in the library)
    replayed again with Keycloak's issuance policy at the AS and at both (the library's run is
    the gateway placement), and the issuance policy's cost per token."""
    replayed = {r.scenario for r in judged.runs}
    names = [n for n in dict.fromkeys(WHERE_SCENARIOS.values()) if n in replayed]
    runs = {"gateway": [r.to_dict() for r in judged.runs if r.scenario in names]}
    for placement in (Placement.AS, Placement.BOTH):
        if not names:
            runs[placement.value] = []
            continue
        placed, _, _ = replay_with_baseline(
            cfg,
            run_dir / f"where-{placement}",
            names,
            baseline=False,
            enforce_at=placement,
            own_gateway=own_gateway,
        )
        runs[placement.value] = [r.to_dict() for r in placed.runs]
    err.print("where     the issuance policy's cost per token (refresh grant, interleaved rounds)")
    issuance = measure_issuance_cost(cfg).to_dict()
    return {"issuance_cost": issuance, "rows": where_to_enforce(runs, load, issuance)}


def lab(
    results: Annotated[
        Path, typer.Option(help="directory to write results into (a timestamped subdirectory)")
    ] = Path("results"),
    baseline: Annotated[
        bool, typer.Option(help="replay the scenarios with every control off too (blast radius)")
    ] = True,
    load_seconds: Annotated[
        float,
        typer.Option(
            help="seconds of load per configuration of the controls matrix (0: no load run)",
            min=0,
        ),
    ] = DEFAULT_LOAD_SECONDS,
    where: Annotated[
        bool,
        typer.Option(
            help="compare enforcing C01-C05 and C11 at the gateway, the authorization server "
            "and both (replays and the cost per token)"
        ),
    ] = True,
    scenario_dir: ScenariosDir = None,
    clients: ClientsDir = None,
    policy: PolicyFile = None,
    junit: JunitFile = None,
) -> None:
    """Run the lab's main job: stand up the stack, seed it, replay the scenarios with the controls
    on and off, and write the results directory (results.json, report.md, report.html)."""
    own = OwnConfig(scenario_dir, clients, policy)
    cfg = with_own_config(load_config(), own)
    t0 = time.time()
    up = start_stack(cfg)
    if own.needs_own_gateway or own.scenarios:
        err.print(f"config    yours: {own.label()}")
    with own_profiles_restored(cfg):
        _main_job(cfg, own, t0, up.seconds, results, baseline, load_seconds, where, junit)


def _main_job(
    cfg: LabConfig,
    own: OwnConfig,
    t0: float,
    start_seconds: float,
    results: Path,
    baseline: bool,
    load_seconds: float,
    where: bool,
    junit: Path | None,
) -> None:
    applied = apply_profiles(cfg)
    err.print(f"clients   {len(applied)} client registrations applied")
    seeded = seeded_options(cfg)
    if seeded is None:
        options = PopulationOptions(patients=DEFAULT_PATIENTS, seed=DEFAULT_SEED)
        err.print(f"seed      loading {options.patients} synthetic patients (seed {options.seed})")
        report = seed_lab(cfg, options)
        err.print(f"seed      {report.load.resources} resources in {report.seconds:.0f} s")
    else:
        err.print(f"seed      lab already holds {seeded.patients} patients (seed {seeded.seed})")
    checks = smoke_checks(cfg) + smart_checks(cfg)
    folder = ResultsDirectory.new(results, t0, None if cfg.external else cfg.audit_dir)
    judged, off, population = replay_with_baseline(
        cfg, folder.path, baseline=baseline, own_gateway=own.needs_own_gateway
    )
    load = None
    if load_seconds > 0:
        err.print(
            f"load      the good scenarios under Locust, {load_seconds:g} s per configuration "
            "of the controls matrix"
        )
        options = lab_load_options(load_seconds, [r.scenario for r in judged.runs])
        load = run_matrix(cfg, options, folder.path, RichProgress(err))
    load_dict = load.to_dict() if load is not None else None
    placements = None
    if where:
        err.print("where     C01-C05 and C11 enforced at the authorization server, then at both")
        placements = compare_placements(
            cfg, folder.path, judged, load_dict, own_gateway=own.needs_own_gateway
        )
    stack_facts = {
        "start_seconds": start_seconds,
        "services": {
            s.name: {"state": s.state, "url": s.url, "rss_mb": s.rss_mb} for s in stack.status(cfg)
        },
    }
    run_dir = write_results(
        folder,
        cfg,
        t0,
        command="lab",
        replay=judged,
        baseline=off,
        population=population.to_dict(),
        checks=checks,
        stack=stack_facts,
        load=load_dict,
        where=placements,
    )
    for check in checks:
        colour = "green" if check["status"] == "pass" else "red"
        out.print(f"[{colour}]{check['status']:<4}[/] {check['id']}: {check['evidence']}")
    out.print(replay_table(judged.runs))
    out.print(blast_table(blast_radius(judged.runs, off.runs if off else None)))
    if load is not None:
        out.print(load_table(load))
    if placements is not None:
        out.print(where_table(placements["rows"]))
    err.print(f"results written to {run_dir} (report: {run_dir / 'report.md'})")
    if junit is not None:
        err.print(f"junit     {junit_for_results(run_dir, junit)}")
    if any(c["status"] != "pass" for c in checks):
        raise LabError("the stack failed its end-to-end checks", f"see {run_dir / 'results.json'}")
    if not judged.ok:
        err.print("[red]some scenario expectations failed[/]")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)
