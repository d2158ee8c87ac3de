"""Request parameters: `{my_patient}` and friends, drawn from the seeded population at run time.

A scenario names *roles* (the patient in context, another patient of the same tenant, ...), never
ids, so the same file runs against any population. `parameters_in` finds the names a text uses
(the validator rejects unknown ones); `Bindings` holds one run's values and `resolve` substitutes
them; `bindings_for` derives values from the seeder's id scheme (see `seed.ids`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from seed.ids import group_id, patient_id, tenant_id, tenant_of_patient

PARAMETERS: Final[dict[str, str]] = {
    "my_patient": "the patient in context (the logged-in or launched patient)",
    "other_patient": "another patient of the same tenant",
    "other_tenant_patient": "a patient of another tenant",
    "common_family": "a frequent family name in the seeded population",
    "my_group": "the tenant's Group (grp-a, grp-b, ...)",
    "my_encounter": "an encounter of the patient in context",
}
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")


class ParameterError(ValueError):
    """A text names a parameter that does not exist (or has no value in this run)."""


def parameters_in(text: str) -> list[str]:
    """The parameter names `text` uses, in order (unknown ones included)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text)]


def unknown_parameters(value: Any) -> list[str]:
    """Names used anywhere in `value` (a string, or nested lists/mappings) that are unknown."""
    found: list[str] = []
    for text in _strings(value):
        found.extend(n for n in parameters_in(text) if n not in PARAMETERS and n not in found)
    return found


def check_parameters(value: Any) -> Any:
    """Pydantic validator body: `value` unchanged, or a ValueError naming the allowed names."""
    unknown = unknown_parameters(value)
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        allowed = ", ".join("{" + n + "}" for n in PARAMETERS)
        raise ValueError(f"unknown parameter(s) {names}; allowed: {allowed}")
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


@dataclass(frozen=True, slots=True)
class Bindings:
    """One run's parameter values."""

    my_patient: str
    other_patient: str
    other_tenant_patient: str
    common_family: str
    my_group: str
    my_encounter: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def resolve(value: Any, bindings: Bindings | Mapping[str, str]) -> Any:
    """`value` with every `{name}` replaced; nested lists/mappings (request bodies) too."""
    values = bindings.as_dict() if isinstance(bindings, Bindings) else dict(bindings)
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: _value(m.group(1), values), value)
    if isinstance(value, Mapping):
        return {resolve(k, values): resolve(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, values) for item in value]
    return value


def _value(name: str, values: Mapping[str, str]) -> str:
    if name not in PARAMETERS:
        allowed = ", ".join("{" + n + "}" for n in PARAMETERS)
        raise ParameterError(f"unknown parameter {{{name}}}; allowed: {allowed}")
    if name not in values:
        raise ParameterError(f"parameter {{{name}}} has no value in this run")
    return values[name]


def bindings_for(
    tenant: str,
    *,
    patients: int,
    tenants: int,
    common_family: str,
    logins: int | None = None,
    rng: random.Random | None = None,
) -> Bindings:
    """Values for a run in `tenant`, from the seeder's id scheme (`seed.ids`).

    `patients`/`tenants` are the seeded population's options (`seed.lab.read_seed_record`);
    `logins` is how many patients (indexes 0..logins-1) have a portal login (all when None):
    `my_patient` is drawn among them, so a standalone launch can log in as that patient.
    `my_encounter` is the patient's first encounter (every seeded patient has visits).
    """
    rng = rng or random.Random(0)
    index = _tenant_index(tenant, tenants)
    mine = [i for i in range(patients) if tenant_of_patient(i, tenants) == index]
    with_login = [i for i in mine if logins is None or i < logins]
    theirs = [i for i in range(patients) if tenant_of_patient(i, tenants) != index]
    if len(mine) < 2 or not with_login or not theirs:
        raise ParameterError(
            f"the seeded population is too small for {tenant}: it needs two patients there "
            "(one with a login) and one in another tenant; seed more patients"
        )
    me = rng.choice(with_login)
    other = rng.choice([i for i in mine if i != me])
    my_id = patient_id(me, tenants)
    return Bindings(
        my_patient=my_id,
        other_patient=patient_id(other, tenants),
        other_tenant_patient=patient_id(rng.choice(theirs), tenants),
        common_family=common_family,
        my_group=group_id(index),
        my_encounter=f"enc-{my_id.removeprefix('pat-')}-1",
    )


def _tenant_index(tenant: str, tenants: int) -> int:
    for index in range(tenants):
        if tenant_id(index) == tenant:
            return index
    raise ParameterError(f"tenant {tenant!r} is not among the seeded population's {tenants}")
