"""The bypass corpus against the real stack: one test per attack request.

The requests are data (`corpus/bypass.yaml`, expanded by `bypass_corpus.py`): interaction
templates × token kinds × answer variants. Each is sent through one in-process gateway with the
lab's policy (every control enforced; only the rate limit is off, so that a 429 never stands in
for a refusal) to the session's real Keycloak and HAPI, and judged on the bytes of its answer.

What is foreign is worked out first, straight from HAPI (unauthenticated, `seeded.hapi_base_url`):
the patients of each tenant, each patient's compartment (`Patient/<id>/$everything`, the
resources that reference the patient) and every tenant-tagged resource. For a patient-context
token the foreign ids are those of the other patients' compartments of its tenant and everything
of the other tenant; for the tenant-a backend, everything of tenant-b; without a token, all of
it. Only seeded-style ids are used (`pat-a-000002`, `obs-b-000003-7`, `org-b`: see seed/ids.py),
never HAPI's numeric ones, so a match is never an accident.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from gateway.config import GatewayConfig
from labcore.config import LabConfig
from simulator.smart.tokens import Token
from simulator.stack.extra_gateway import extra_gateway
from tests.integration import test_gateway as lab_gateway
from tests.integration.bypass_corpus import (
    PLACEHOLDERS,
    Answer,
    Case,
    ForeignIds,
    Rendered,
    apply_variant,
    describe,
    judge,
    load_corpus,
    render,
)
from tests.integration.test_gateway import ME, OTHER, TENANT_B_PATIENT, gateway, token_for

pytestmark = pytest.mark.anyio  # every entry must hold

# the lab's fixtures, shared rather than copied (the seeded population is conftest.py's): the
# gateway's configuration with the lab's policy, the scheduling assistant's token
base_config = lab_gateway.base_config
scheduler_token = lab_gateway.scheduler_token

TAG_SYSTEM = "https://fhirlab.dev/tenant"
TENANTS = ("tenant-a", "tenant-b")
OTHER_B = "pat-b-000003"  # a second tenant-b patient
REFERENCE_TYPES = ("Organization", "Practitioner", "PractitionerRole", "Location", "Group")
SAFE_ID = re.compile(r"[A-Za-z0-9-]{5,64}")
FHIR_JSON = {"Accept": "application/fhir+json"}
CASES = load_corpus()


@dataclass(frozen=True)
class Kind:
    """A token kind: whose token, and who is who for it."""

    tenant: str
    me: str
    other: str
    xt: str
    client: str | None = None  # None: no token at all
    scope: str = ""
    user: str | None = None
    patient_context: bool = True


KINDS = {
    "scheduler": Kind(  # its token is test_gateway's `scheduler_token`
        "tenant-a",
        ME,
        OTHER,
        TENANT_B_PATIENT,
        "scheduling-assistant",
        "openid launch/patient patient/Patient.rs patient/Appointment.*",
        ME,
    ),
    "triage": Kind(
        "tenant-a",
        ME,
        OTHER,
        TENANT_B_PATIENT,
        "triage-chatbot",
        "openid launch/patient patient/Patient.rs patient/Condition.rs patient/Observation.rs",
        ME,
    ),
    "analytics": Kind(
        "tenant-a",
        ME,
        TENANT_B_PATIENT,
        OTHER_B,
        "population-analytics",
        "system/Patient.rs system/Observation.rs system/Condition.rs system/Group.rs",
        None,
        patient_context=False,
    ),
    "tenant-b": Kind(
        "tenant-b",
        TENANT_B_PATIENT,
        OTHER_B,
        ME,
        "shared-vendor",
        "openid launch/patient patient/Patient.rs patient/Observation.rs",
        TENANT_B_PATIENT,
    ),
    "none": Kind("tenant-a", ME, OTHER, TENANT_B_PATIENT, patient_context=False),
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so one gateway serves every case


# ---- the population, as HAPI holds it ----------------------------------------------------------
@dataclass
class Population:
    patients: dict[str, list[str]]  # tenant -> patient ids
    compartments: dict[str, dict[str, dict[str, Any]]]  # patient -> id -> resource
    tagged: dict[str, set[str]]  # tenant -> ids of every resource tagged with it
    pages: dict[str, str] = field(default_factory=dict)  # name -> a HAPI `_getpages` id


def _search(hapi: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every resource of a HAPI search, all pages."""
    found: list[dict[str, Any]] = []
    resp = hapi.get(path, params=params, headers=FHIR_JSON)
    while True:
        assert resp.status_code == 200, resp.text
        bundle = resp.json()
        found += [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
        nxt = next((li["url"] for li in bundle.get("link", []) if li["relation"] == "next"), None)
        if nxt is None:
            return found
        resp = hapi.get(nxt, headers=FHIR_JSON)


def _page_id(hapi: httpx.Client, path: str, params: dict[str, str]) -> str:
    bundle = hapi.get(path, params=params, headers=FHIR_JSON).json()
    nxt = next(li["url"] for li in bundle["link"] if li["relation"] == "next")
    return parse_qs(urlsplit(nxt).query)["_getpages"][0]


def _tag(tenant: str) -> str:
    return f"{TAG_SYSTEM}|{tenant}"


def binary_id(patient: str) -> str:
    return f"bypass-bin-{patient.removeprefix('pat-')}"


def _put_binary(hapi: httpx.Client, patient: str, tenant: str) -> None:
    """A Binary whose content names the patient (an attachment, an export file)."""
    note = f"Clinical note for Patient/{patient}; see Binary/{binary_id(patient)}\n"
    binary = {
        "resourceType": "Binary",
        "id": binary_id(patient),
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": tenant}]},
        "contentType": "text/plain",
        "securityContext": {"reference": f"Patient/{patient}"},
        "data": base64.b64encode(note.encode()).decode(),
    }
    put = hapi.put(f"/Binary/{binary['id']}", json=binary, headers=FHIR_JSON)
    assert put.status_code in (200, 201), put.text


def read_population(hapi: httpx.Client) -> Population:
    patients = {
        t: sorted(r["id"] for r in _search(hapi, "/Patient", {"_tag": _tag(t), "_elements": "id"}))
        for t in TENANTS
    }
    for tenant, patient in (
        ("tenant-a", ME),
        ("tenant-a", OTHER),
        ("tenant-b", TENANT_B_PATIENT),
        ("tenant-b", OTHER_B),
    ):
        assert patient in patients[tenant], f"the seeded population has no {patient}"
        _put_binary(hapi, patient, tenant)
    compartments: dict[str, dict[str, dict[str, Any]]] = {}
    for patient in (p for t in TENANTS for p in patients[t]):
        everything = _search(hapi, f"/Patient/{patient}/$everything", {"_count": "1000"})
        mention = f'"Patient/{patient}"'
        compartments[patient] = {
            r["id"]: r
            for r in everything
            if (r["resourceType"] == "Patient" and r["id"] == patient) or mention in json.dumps(r)
        }
    for patient in (ME, OTHER, TENANT_B_PATIENT, OTHER_B):  # the Binaries put above
        compartments[patient][binary_id(patient)] = {"resourceType": "Binary"}
    types = {r["resourceType"] for c in compartments.values() for r in c.values()}
    tagged = {
        t: {
            r["id"]
            for rtype in sorted(types | set(REFERENCE_TYPES))
            for r in _search(hapi, f"/{rtype}", {"_tag": _tag(t), "_elements": "id"})
        }
        for t in TENANTS
    }
    pages = {
        "hapi_obs_page": _page_id(hapi, "/Observation", {"_count": "10"}),
        "hapi_patient_page": _page_id(hapi, "/Patient", {"_count": "10"}),
        **{
            f"hapi_tenant_page:{t}": _page_id(hapi, "/Patient", {"_tag": _tag(t), "_count": "5"})
            for t in TENANTS
        },
    }
    return Population(patients, compartments, tagged, pages)


# ---- one token kind's view: its token, its foreign ids, its placeholders ----------------------
@dataclass
class Side:
    kind: Kind
    token: str | None
    foreign: ForeignIds
    values: dict[str, str]
    population: Population

    def lookup(self, name: str, rtype: str | None) -> str:
        if rtype is None:
            if name not in self.values:
                raise KeyError(f"no placeholder {{{name}}} (known: {sorted(self.values)})")
            return self.values[name]
        patient = {"me": self.kind.me, "other": self.kind.other, "xt": self.kind.xt}[name]
        ids = [
            rid
            for rid, r in self.population.compartments[patient].items()
            if r["resourceType"] == rtype
        ]
        if not ids:
            raise KeyError(f"{patient} has no {rtype} in the seeded population")
        return min(ids, key=_natural)


def _natural(rid: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", rid)]


def foreign_ids(kind: Kind, population: Population) -> ForeignIds:
    others = [t for t in TENANTS if t != kind.tenant]
    ids: set[str] = set()
    for tenant in others:
        ids |= population.tagged[tenant]
        for patient in population.patients[tenant]:
            ids |= set(population.compartments[patient])
    if kind.patient_context:
        own = set(population.compartments[kind.me])
        for patient in population.patients[kind.tenant]:
            ids |= set(population.compartments[patient]) - own
        ids -= own
    elif kind.client is None:  # no token: nothing is anyone's to see
        ids |= population.tagged[kind.tenant]
        for patient in population.patients[kind.tenant]:
            ids |= set(population.compartments[patient])
    return ForeignIds(i for i in ids if SAFE_ID.fullmatch(i) and not i.isdigit())


def placeholder_values(kind: Kind, population: Population, lab: LabConfig) -> dict[str, str]:
    def letter(tenant: str) -> str:
        return tenant.removeprefix("tenant-")

    xt_tenant = next(t for t in TENANTS if t != kind.tenant)
    me_record = population.compartments[kind.me][kind.me]
    other_record = population.compartments[kind.other][kind.other]
    mrn = other_record["identifier"][0]
    coding = next(
        r["code"]["coding"][0]
        for r in population.compartments[kind.me].values()
        if r["resourceType"] == "Observation"
    )
    return {
        "me": kind.me,
        "other": kind.other,
        "xt": kind.xt,
        "other_pct": "".join(f"%{ord(c):02X}" for c in kind.other),
        "other_family": quote(other_record["name"][0]["family"]),
        "other_mrn": quote(f"{mrn['system']}|{mrn['value']}", safe=":/"),
        "my_group": f"grp-{letter(kind.tenant)}",
        "xt_group": f"grp-{letter(xt_tenant)}",
        "my_org": f"org-{letter(kind.tenant)}",
        "xt_org": f"org-{letter(xt_tenant)}",
        "my_tenant_tag": quote(_tag(kind.tenant), safe=":/"),
        "xt_tenant_tag": quote(_tag(xt_tenant), safe=":/"),
        "my_prac": me_record["generalPractitioner"][0]["reference"].split("/")[1],
        "common_code": quote(f"{coding['system']}|{coding['code']}", safe=":/"),
        "other_binary": binary_id(kind.other),
        "xt_binary": binary_id(kind.xt),
        "base": lab.gateway_base_url,
        "hapi_obs_page": population.pages["hapi_obs_page"],
        "hapi_patient_page": population.pages["hapi_patient_page"],
        "hapi_my_tenant_page": population.pages[f"hapi_tenant_page:{kind.tenant}"],
        "hapi_xt_tenant_page": population.pages[f"hapi_tenant_page:{xt_tenant}"],
    }


@pytest.fixture(scope="module")
def sides(seeded: LabConfig, scheduler_token: Token, hapi: httpx.Client) -> dict[str, Side]:
    population = read_population(hapi)
    out: dict[str, Side] = {}
    for name, kind in KINDS.items():
        if name == "scheduler":
            token: str | None = scheduler_token.access_token
        elif kind.client is None:
            token = None
        else:
            token = token_for(seeded, kind.client, kind.scope, kind.user, kind.tenant).access_token
        foreign = foreign_ids(kind, population)
        assert len(foreign) > 100, f"{name}: too few foreign ids to judge by ({len(foreign)})"
        assert kind.other in foreign and kind.xt in foreign, name
        assert (kind.me in foreign) is (kind.client is None), name
        values = placeholder_values(kind, population, seeded)
        assert set(values) == PLACEHOLDERS
        out[name] = Side(kind, token, foreign, values, population)
    return out


@pytest.fixture(scope="module")
async def corpus_gateway(
    seeded: LabConfig, base_config: GatewayConfig, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One gateway for the whole corpus: the lab's policy, the rate limit off."""
    policy = base_config.policy
    no_limit = policy.rate_limit.model_copy(update={"enabled": False})
    config = replace(base_config, policy=policy.model_copy(update={"rate_limit": no_limit}))
    async with gateway(seeded, config, tmp_path_factory.mktemp("bypass-audit")) as gw:
        yield gw


@pytest.fixture(scope="module")
def hapi_cleanup(hapi: httpx.Client) -> Iterator[list[str]]:
    """Export jobs the corpus started, cancelled at the end (they only load HAPI)."""
    jobs: list[str] = []
    yield jobs
    for poll in jobs:
        hapi.delete(poll)


# ---- the corpus --------------------------------------------------------------------------------
async def send(gw: httpx.AsyncClient, request: Rendered, token: str | None) -> Answer:
    headers = dict(request.headers)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    built = gw.build_request(request.method, request.url, headers=headers, content=request.content)
    if not any(k.lower() == "accept" for k in request.headers):
        del built.headers["accept"]  # the default variant: no Accept at all (httpx sends */*)
    resp = await gw.send(built)
    return Answer(resp.status_code, tuple(resp.headers.multi_items()), resp.content)


async def follow_next(
    gw: httpx.AsyncClient, case: Case, first: Rendered, side: Side
) -> tuple[Rendered, Answer]:
    """Ask as written (JSON), then follow the answer's `next` link in the case's variant."""
    opening = replace(first, headers={**first.headers, **FHIR_JSON})
    answer = await send(gw, opening, side.token)
    assert answer.status == 200, f"the opening search failed: {describe(answer)}"
    links = json.loads(answer.body).get("link", [])
    nxt = next((li["url"] for li in links if li["relation"] == "next"), None)
    assert nxt is not None, f"the opening search has no next link: {describe(answer)}"
    parts = urlsplit(nxt)
    url, headers = apply_variant(f"{parts.path}?{parts.query}", first.headers, case.variant)
    followed = Rendered("GET", url, headers)
    return followed, await send(gw, followed, side.token)


@pytest.fixture(scope="module")
async def fast_lane_gateway(
    seeded: LabConfig, base_config: GatewayConfig, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The same policy as `corpus_gateway`, in a gateway process with the compiled fast lane
    before it (`python -m gateway --fast-lane`, `gateway/fast_lane.py`)."""
    modes = dict(base_config.policy.controls)
    directory = tmp_path_factory.mktemp("bypass-fast-lane")
    with extra_gateway(
        seeded, "fast lane", directory, modes, rate_limit=False, server_args=("--fast-lane",)
    ) as gw:
        base = gw.base_url.removesuffix("/fhir")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            yield client


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bypass(
    case: Case,
    corpus_gateway: httpx.AsyncClient,
    sides: dict[str, Side],
    hapi_cleanup: list[str],
) -> None:
    await check_case(case, corpus_gateway, sides, hapi_cleanup)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bypass_through_the_fast_lane(
    case: Case,
    fast_lane_gateway: httpx.AsyncClient,
    sides: dict[str, Side],
    hapi_cleanup: list[str],
) -> None:
    await check_case(case, fast_lane_gateway, sides, hapi_cleanup)


async def check_case(
    case: Case, corpus_gateway: httpx.AsyncClient, sides: dict[str, Side], hapi_cleanup: list[str]
) -> None:
    """Send one corpus entry through `corpus_gateway` and judge its answer."""
    side = sides[case.token]
    template = case.template
    if template.follow_next:
        first = render(template, None, side.lookup)
        request, answer = await follow_next(corpus_gateway, case, first, side)
        named = side.foreign.found(first.text()) | side.foreign.found(request.text())
    else:
        request = render(template, case.variant, side.lookup)
        answer = await send(corpus_gateway, request, side.token)
        named = side.foreign.found(request.text())
    if answer.status == 202:
        location = dict((k.lower(), v) for k, v in answer.headers).get("content-location")
        if location and "_jobId=" in location:
            hapi_cleanup.append(f"/$export-poll-status?{urlsplit(location).query}")
    problems = judge(case, request.method, answer, side.foreign, named, side.token is not None)
    assert not problems, (
        f"{case.id}: " + "; ".join(problems) + f"\n  request: {request.method} {request.url}"
        f" {request.headers}\n  answer: {describe(answer)}"
    )
