"""Locust users built from the load plan: one FastHttpUser class per scenario (Locust process only).

Each virtual user draws its own parameters from the seeded population, obtains its token in
`on_start` through the scenario's real SMART flow (reported as a `TOKEN` request named after the
scenario), then runs the scenario's tasks by weight, back to back or at a fixed pace per user,
while a slice runs (`SliceControl`): the Locust process starts the first slice when every user
has its token, so that slow logins do not eat into the measured time, points the users at the
slice's gateway, and pauses them between slices. Every request is tagged with the slice it was
sent in. The token is kept across slices: every gateway of the run accepts the lab's tokens.
A response is judged
once (`simulator.load.responses`): a policy refusal is reported as a success to Locust and marked
`denied` in the request's context, so the raw-sample listener can count it.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from gevent.event import Event
from locust import FastHttpUser, constant, constant_throughput
from locust.exception import StopUser

from labcore.config import LabConfig
from labcore.profiles import ClientProfile
from simulator.load.plan import LoadPlan, LoadTask, ScenarioLoad, TaskKind
from simulator.load.responses import Outcome, classify, next_page
from simulator.load.samples import TOKEN
from simulator.load.spec import Population
from simulator.replay.credentials import obtain
from simulator.scenarios import Bindings, Launch, bindings_for, resolve
from simulator.smart.tokens import Token

FHIR_JSON = "application/fhir+json"
RENEW_BEFORE_S = 15.0  # obtain a new token this long before the current one expires
URL_SAFE = "/?&=:,$|*_.~-()'!+@;%"


class TokenError(Exception):
    """The user's token could not be obtained (the failure Locust records for TOKEN)."""


class SliceControl:
    """Where the users send and whether they may: `begin` a slice (its index and its gateway's
    FHIR base), `pause` at its end; `inflight` counts the requests not yet answered."""

    def __init__(self, host: str) -> None:
        self.go = Event()
        self.index = -1  # -1: before the first slice (the logins)
        self.host = host.rstrip("/")
        self.inflight = 0

    def begin(self, index: int, host: str) -> None:
        self.index, self.host = index, host.rstrip("/")
        self.go.set()

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
        # task name -> (next url, pages walked, the slice it was walked in)
        self.walks: dict[str, tuple[str, int, int]] = {}
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

    def headers(self) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.access_token}"
        return headers

    # ---- requests ---------------------------------------------------------------------
    def send(
        self,
        method: str,
        url: str,
        name: str,
        *,
        data: str | None = None,
        content_type: str | None = None,
    ) -> bytes | None:
        """One request in the current slice, to its gateway, judged; the body of a successful
        response (for page walks)."""
        self.wait_for_slice()
        if self._token_due():
            self._renew()
        headers = self.headers()
        if content_type:
            headers["Content-Type"] = content_type
        slice_control = self.control
        index = slice_control.index
        target = url if url.startswith(("http://", "https://")) else f"{slice_control.host}/{url}"
        slice_control.inflight += 1
        try:
            with self.client.request(
                method, quote(target, safe=URL_SAFE), name=name, headers=headers, data=data,
                catch_response=True,
            ) as resp:  # fmt: skip
                status = resp.status_code or None
                body = resp.content if status else None
                outcome, control = classify(status, body, resp.headers)
                context = resp.request_meta["context"]
                context["outcome"], context["control"] = str(outcome), control
                context["slice"] = index
                if outcome is Outcome.FAILED:
                    resp.failure(str(resp.error) if resp.error else f"HTTP {resp.status_code}")
                else:
                    resp.success()
                return body if outcome is Outcome.OK else None
        finally:
            slice_control.inflight -= 1


def request_task(task: LoadTask) -> Callable[[ScenarioUser], None]:
    def run(user: ScenarioUser) -> None:
        user.wait_for_slice()
        b = user.bindings
        url = resolve(task.url, b)
        if task.body is not None:
            user.send(task.method, url, task.name, data=json.dumps(resolve(task.body, b)),
                      content_type=FHIR_JSON)  # fmt: skip
        elif task.form is not None:
            user.send(task.method, url, task.name, data=urlencode(resolve(task.form, b)),
                      content_type="application/x-www-form-urlencoded")  # fmt: skip
        else:
            user.send(task.method, url, task.name)

    run.__name__ = task.name
    return run


def page_walk_task(task: LoadTask) -> Callable[[ScenarioUser], None]:
    """One page per run: the first, then the `next` link, until max_pages or the last page. A
    walk does not cross slices: its `next` links point at the gateway that served it."""

    def run(user: ScenarioUser) -> None:
        user.wait_for_slice()
        index = user.control.index
        walked = user.walks.pop(task.name, None)
        if walked is None or walked[1] >= (task.max_pages or 1) or walked[2] != index:
            url = resolve(task.url, user.bindings)
            url += ("&" if "?" in url else "?") + f"_count={task.count}"
            name, pages = task.name, 0
        else:
            url, pages, _ = walked
            name = task.next_page_name
        following = next_page(user.send("GET", url, name))
        if following:
            user.walks[task.name] = (following, pages + 1, index)

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
            make = page_walk_task if task.kind is TaskKind.PAGE_WALK else request_task
            tasks[make(task)] = task.weight
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
