"""Locust users built from the load plan: one FastHttpUser class per scenario (Locust process only).

Each virtual user draws its own parameters from the seeded population, obtains its token in
`on_start` through the scenario's real SMART flow (reported as a `TOKEN` request named after the
scenario), then runs the scenario's tasks by weight, back to back or at a fixed pace per user,
while a slice runs (`SliceControl`): the Locust process starts the first slice when every user
has its token, so that slow logins do not eat into the measured time, points the users at the
slice's gateway, and pauses them between slices. Every request is tagged with the slice it was
sent in. The token is kept across slices: every gateway of the run accepts the lab's tokens.

The steps are interpreted by `simulator.steps`, as in the replay: a task takes the next request
of its step's walk; this module only sends it with Locust's client and reports it as a request
event (the edge). An answer is judged once (`simulator.steps.classify`): a policy refusal is
reported as a success to Locust and marked `denied` in the request's context, so the raw-sample
listener can count it.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from gevent.event import Event
from locust import FastHttpUser, constant, constant_throughput
from locust.exception import StopUser

from labcore.config import LabConfig
from labcore.profiles import ClientProfile
from simulator.load.plan import LoadPlan, LoadTask, ScenarioLoad
from simulator.load.samples import TOKEN
from simulator.load.spec import Population
from simulator.replay.credentials import obtain
from simulator.scenarios import Bindings, Launch, bindings_for
from simulator.smart.tokens import Token
from simulator.steps import Outcome, Part, Reply, Session, StepRequest, Walk, classify
from simulator.steps.kinds import request_kind

RENEW_BEFORE_S = 15.0  # obtain a new token this long before the current one expires
URL_SAFE = "/?&=:,$|*_.~-()'!+@;%"


class TokenError(Exception):
    """The user's token could not be obtained (the failure Locust records for TOKEN)."""


class SliceControl:
    """Where the users send and whether they may: `begin` one slice or several at once (their
    indices and gateways' FHIR bases; each request goes to one of them drawn at random), `pause`
    at the end; `inflight` counts the requests not yet answered."""

    def __init__(self, host: str) -> None:
        self.go = Event()
        self.index = -1  # -1: before the first slice (the logins)
        self.host = host.rstrip("/")
        self.choices: tuple[tuple[int, str], ...] = ((self.index, self.host),)
        self.inflight = 0
        self.rng = random.Random()

    def begin(self, choices: Sequence[tuple[int, str]]) -> None:
        """Run these slices together: every request goes to one of them, drawn at random."""
        self.choices = tuple((index, host.rstrip("/")) for index, host in choices)
        self.index, self.host = self.choices[0]
        self.go.set()

    def pick(self) -> tuple[int, str]:
        """The slice (index, gateway) of the next request."""
        if len(self.choices) == 1:
            return self.choices[0]
        return self.rng.choice(self.choices)

    def running(self, index: int) -> str | None:
        """The gateway of slice `index` if it runs now."""
        return next((host for i, host in self.choices if i == index), None)

    def pause(self) -> None:
        self.go.clear()


class ScenarioUser(FastHttpUser):
    """The shared behaviour; `user_classes` makes one subclass per scenario."""

    abstract = True
    wait_time = constant(0)
    load: ClassVar[ScenarioLoad]
    lab: ClassVar[LabConfig]
    profile: ClassVar[ClientProfile]
    population: ClassVar[Population]
    numbering: ClassVar[itertools.count[int]]
    control: ClassVar[SliceControl]  # the current slice; its `go` is set while it runs

    def on_start(self) -> None:
        self.number = next(self.numbering)
        self.bindings = self._bindings()
        self.token: Token | None = None
        self.session = Session(self.control.host, self.bindings)
        # task name -> (its step's walk, the slice it was walked in)
        self.walks: dict[str, tuple[Walk, int]] = {}
        self._renew()

    def wait_for_slice(self) -> None:
        self.control.go.wait()

    # ---- the token --------------------------------------------------------------------
    def _bindings(self) -> Bindings:
        pop, scenario = self.population, self.load.scenario
        worker = getattr(self.environment.runner, "worker_index", -1)
        rng = random.Random(f"{pop.seed}:{scenario.name}:{worker}:{self.number}")
        return bindings_for(
            scenario.tenant or self.profile.tenants[0],
            patients=pop.patients,
            tenants=pop.tenants,
            common_family=pop.common_family,
            logins=pop.logins,
            rng=rng,
        )

    def _renew(self) -> None:
        """Obtain a token (the scenario's SMART flow); report it as a TOKEN request. A user
        without a token stops: refused (the AS refusing a `scope_probe` is a denial) or failed."""
        scenario = self.load.scenario
        if scenario.launch is Launch.NONE:
            return
        tenant = scenario.tenant or self.profile.tenants[0]
        started = time.time()
        t0 = time.perf_counter()
        try:
            creds = obtain(self.lab, scenario, self.profile, tenant, self.bindings)
            creds.close()
            token, error = creds.token, creds.error
        except Exception as exc:  # transport errors, an unexpected page: a failed acquisition
            token, error = None, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - t0) * 1000
        self.token = token
        if token is not None:
            self._report_token(ms, started, Outcome.OK, None)
            return
        if scenario.scope_probe:
            self._report_token(ms, started, Outcome.DENIED, None)
        else:
            self._report_token(ms, started, Outcome.FAILED, TokenError(error or "no token"))
        raise StopUser()

    def _report_token(
        self, ms: float, started: float, outcome: Outcome, error: Exception | None
    ) -> None:
        self.environment.events.request.fire(
            request_type=TOKEN,
            name=self.load.name,
            response_time=ms,
            response_length=0,
            exception=error,
            context={"outcome": str(outcome), "slice": self.control.index},
            start_time=started,
            url=None,
            response=None,
        )

    def _token_due(self) -> bool:
        token = self.token
        if token is None or token.expires_in is None:
            return False
        return time.time() > token.received_at + token.expires_in - RENEW_BEFORE_S

    # ---- the steps --------------------------------------------------------------------
    def run_step(self, task: LoadTask) -> None:
        """The next request of the task's step, in the current slice (of those running, one
        drawn at random). A walk goes on where it stopped, through the same slice's gateway (a
        page walk's `next` links point at the gateway that served it) while that slice runs; a
        new one starts once it has ended, or if its slice no longer runs."""
        self.wait_for_slice()
        if self._token_due():
            self._renew()
        walk, index = self.walks.get(task.name, (None, -1))
        host = self.control.running(index) if walk is not None else None
        request = None
        if walk is not None and host is not None:
            self.session.base_url, self.session.token = host, self.token
            request = walk.next_request()
        if walk is None or request is None:
            index, host = self.control.pick()
            self.session.base_url, self.session.token = host, self.token
            walk = Walk(task.definition, self.session)
            request = walk.next_request()
        if request is None:
            return
        self.walks[task.name] = (walk, index)
        name = task.next_page_name if request.part is Part.NEXT_PAGE else task.name
        walk.answer(self.send(request, name, index))

    def send(self, request: StepRequest, name: str, index: int) -> Reply:
        """Send one request to slice `index`'s gateway and report it to Locust as a request
        event: its outcome, refusing control and slice in the context; a failure as a
        failure."""
        slice_control = self.control
        slice_control.inflight += 1
        try:
            with self.client.request(
                request.method, quote(request.url, safe=URL_SAFE), name=name,
                headers=dict(request.headers), data=request.content, catch_response=True,
            ) as resp:  # fmt: skip
                status = resp.status_code or None
                body = resp.content if status else None
                outcome, control = classify(status, body, resp.headers)
                context = resp.request_meta["context"]
                context["outcome"], context["control"] = str(outcome), control
                context["slice"] = index
                context["kind"] = request_kind(request)
                if outcome is Outcome.FAILED:
                    resp.failure(str(resp.error) if resp.error else f"HTTP {resp.status_code}")
                else:
                    resp.success()
                return Reply(status, resp.headers if status else {}, body or b"")
        finally:
            slice_control.inflight -= 1


def step_task(task: LoadTask) -> Callable[[ScenarioUser], None]:
    def run(user: ScenarioUser) -> None:
        user.run_step(task)

    run.__name__ = task.name
    return run


def _class_name(scenario: str) -> str:
    return "".join(part.capitalize() for part in scenario.split("-")) + "User"


def user_classes(
    plan: LoadPlan,
    lab: LabConfig,
    profiles: dict[str, ClientProfile],
    population: Population,
    control: SliceControl,
    pace: float = 0.0,
) -> list[type[ScenarioUser]]:
    """One user class per scenario of the plan, weighted by the scenario's load weight; the
    users send only while `control` runs a slice, to its gateway. `pace` > 0:
    each user sends at most that many requests per second (0: back to back)."""
    classes: list[type[ScenarioUser]] = []
    for load in plan.scenarios:
        tasks: dict[Any, int] = {}
        for task in load.tasks:
            tasks[step_task(task)] = task.weight
        attrs = {
            "__module__": __name__,
            "abstract": False,
            "weight": load.weight,
            "wait_time": constant_throughput(pace) if pace > 0 else constant(0),
            "host": control.host,
            "tasks": tasks,
            "load": load,
            "lab": lab,
            "profile": profiles[load.scenario.client],
            "population": population,
            "numbering": itertools.count(),
            "control": control,
        }
        classes.append(type(_class_name(load.name), (ScenarioUser,), attrs))
    return classes
