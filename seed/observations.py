"""Observation resources: vital signs, laboratory results and survey scores of one visit."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from seed.codes import (
    BMI,
    BODY_HEIGHT,
    BODY_TEMP,
    BODY_WEIGHT,
    BP_PANEL,
    CATEGORY_DISPLAY,
    CD4_COUNT,
    CHOLESTEROL,
    CREATININE,
    DIASTOLIC,
    GAD7,
    GLUCOSE,
    HBA1C,
    HEART_RATE,
    HEMOGLOBIN,
    HIV_VIRAL_LOAD,
    OBS_CATEGORY,
    OBS_INTERPRETATION,
    PHQ9,
    RESP_RATE,
    SPO2,
    SYSTOLIC,
    Code,
    ObsDef,
)
from seed.demographics import Person
from seed.fhir import Resource, concept, iso_datetime, meta, quantity, rounded
from seed.physiology import Baseline, Vitals, lab_value, reference_range
from seed.visits import EMERGENCY_VISIT, FOLLOWUP, INPATIENT_STAY, WELLNESS, Visit

_INTERPRETATION = {
    "L": {"system": OBS_INTERPRETATION, "code": "L", "display": "Low"},
    "N": {"system": OBS_INTERPRETATION, "code": "N", "display": "Normal"},
    "H": {"system": OBS_INTERPRETATION, "code": "H", "display": "High"},
}
_ADULT_PANEL = (GLUCOSE, CHOLESTEROL, CREATININE, HEMOGLOBIN)
#: Shared ``category`` fragments (read-only, see ``seed.fhir``).
_CATEGORY = {
    key: [{"coding": [{"system": OBS_CATEGORY, "code": key, "display": display}]}]
    for key, display in CATEGORY_DISPLAY.items()
}


@dataclass(slots=True)
class ObservationContext:
    """What the observations of one patient share: ids, baseline, running survey scores."""

    person: Person
    baseline: Baseline
    rng: random.Random
    window_start: int
    diabetic: bool
    treated: set[str]  # keys of conditions with a MedicationRequest
    resources: list[Resource] = field(default_factory=list)
    survey_level: dict[str, float] = field(default_factory=dict)

    def add(
        self,
        visit: Visit,
        enc_id: str,
        defn: ObsDef | Code,
        minute_offset: int,
        **value: object,
    ) -> None:
        """One Observation; it carries the security labels of its visit, like every resource
        of a sensitive encounter."""
        person = self.person
        if isinstance(defn, ObsDef):
            category, code = _CATEGORY[defn.category], defn.code.concept
        else:
            category, code = _CATEGORY["vital-signs"], defn.concept
        resource: Resource = {
            "resourceType": "Observation",
            "id": f"obs-{person.key}-{len(self.resources) + 1}",
            "meta": meta(person.tenant.id, visit.security),
            "status": "final",
            "category": category,
            "code": code,
            "subject": {"reference": f"Patient/{person.id}"},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "effectiveDateTime": iso_datetime(visit.day, min(visit.minute + minute_offset, 1439)),
            "performer": [{"reference": f"Practitioner/{visit.practitioner}"}],
            **value,
        }
        self.resources.append(resource)

    def quantity(
        self,
        visit: Visit,
        enc_id: str,
        defn: ObsDef,
        value: float,
        offset: int = 10,
    ) -> None:
        self.add(
            visit,
            enc_id,
            defn,
            offset,
            valueQuantity=quantity(defn, rounded(value, defn.decimals)),
        )

    def lab(self, visit: Visit, enc_id: str, defn: ObsDef, years_in: float) -> None:
        value = rounded(lab_value(self.baseline, self.rng, defn.code.code, years_in), defn.decimals)
        low, high = reference_range(defn.code.code, self.baseline.male)
        flag = "N"
        if low is not None and value < low:
            flag = "L"
        elif high is not None and value > high:
            flag = "H"
        self.add(
            visit,
            enc_id,
            defn,
            40,
            valueQuantity=quantity(defn, value),
            interpretation=[{"coding": [_INTERPRETATION[flag]]}],
            referenceRange=_reference_range(defn, self.baseline.male),
        )


@cache
def _reference_range(defn: ObsDef, male: bool) -> list[dict[str, Any]]:
    """Shared ``referenceRange`` fragment of a lab (read-only, see ``seed.fhir``)."""
    low, high = reference_range(defn.code.code, male)
    out: dict[str, Any] = {}
    if low is not None:
        out["low"] = quantity(defn, low)
    if high is not None:
        out["high"] = quantity(defn, high)
    return [out]


def visit_observations(ctx: ObservationContext, visit: Visit, enc_id: str, vitals: Vitals) -> None:
    """Append the observations of ``visit`` to ``ctx.resources``."""
    kind = visit.kind
    years_in = max(0.0, (visit.day - ctx.window_start) / 365.25)
    dx = visit.diagnosis
    sensitivity = dx.defn.sensitivity if dx else None
    if sensitivity in ("BH", "HIV"):
        assert dx is not None
        _sensitive_results(ctx, visit, enc_id, dx.defn.key, years_in)
        return
    q = ctx.quantity
    q(visit, enc_id, HEART_RATE, vitals.hr)
    ctx.add(
        visit,
        enc_id,
        BP_PANEL,
        10,
        component=[
            {"code": concept(SYSTOLIC.code), "valueQuantity": quantity(SYSTOLIC, vitals.sbp)},
            {"code": concept(DIASTOLIC.code), "valueQuantity": quantity(DIASTOLIC, vitals.dbp)},
        ],
    )
    if sensitivity == "SUD":
        return
    if kind in (WELLNESS, FOLLOWUP):
        q(visit, enc_id, BODY_WEIGHT, vitals.weight)
    if kind != FOLLOWUP:
        q(visit, enc_id, RESP_RATE, vitals.rr)
        q(visit, enc_id, BODY_TEMP, vitals.temp)
        q(visit, enc_id, SPO2, vitals.spo2)
    if kind == WELLNESS:
        q(visit, enc_id, BODY_HEIGHT, vitals.height)
        q(visit, enc_id, BMI, vitals.bmi)
        if visit.day - ctx.person.birth_ord >= 18 * 365.25:  # adult at the visit
            for defn in _ADULT_PANEL:
                ctx.lab(visit, enc_id, defn, years_in)
            if ctx.diabetic:
                ctx.lab(visit, enc_id, HBA1C, years_in)
    elif kind == FOLLOWUP and dx is not None:
        for defn in dx.defn.followup_labs:
            ctx.lab(visit, enc_id, defn, years_in)
    elif kind == INPATIENT_STAY:
        for defn in (HEMOGLOBIN, CREATININE, GLUCOSE):
            ctx.lab(visit, enc_id, defn, years_in)
    else:
        assert kind == EMERGENCY_VISIT


def _sensitive_results(
    ctx: ObservationContext,
    visit: Visit,
    enc_id: str,
    key: str,
    years_in: float,
) -> None:
    rng = ctx.rng
    treated = key in ctx.treated
    if key == "hiv":
        if treated and years_in > 0.3:
            vl: dict[str, object] = quantity(HIV_VIRAL_LOAD, 20)
            vl["comparator"] = "<"
        else:
            vl = quantity(HIV_VIRAL_LOAD, round(10 ** rng.uniform(3.0, 5.0)))
        ctx.add(visit, enc_id, HIV_VIRAL_LOAD, 40, valueQuantity=vl)
        cd4 = rng.gauss(650, 120) if treated else rng.gauss(380, 90)
        ctx.quantity(visit, enc_id, CD4_COUNT, max(50.0, cd4), offset=40)
        return
    survey, top = (GAD7, 21) if key == "anxiety" else (PHQ9, 27)
    level = ctx.survey_level.get(key)
    if level is None:
        level = rng.uniform(10, 20)
    score = max(0, min(top, round(level + rng.gauss(0, 1.5))))
    ctx.survey_level[key] = max(2.0, level - (1.5 if treated else 0.3))
    ctx.quantity(visit, enc_id, survey, score, offset=5)
