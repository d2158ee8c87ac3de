"""A per-patient physiological baseline, and measurements drawn around it over time.

Values stay consistent per patient: each measurement is the patient's baseline (set by age, sex
and conditions) plus a slow drift and a small measurement noise. Diabetics have a higher HbA1c and
a fasting glucose derived from it, hypertensives a higher blood pressure, CKD a higher creatinine,
COPD a lower SpO2; BMI is computed from the weight and height actually reported.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

# Median height (cm) by age for boys / girls (CDC growth charts, rounded); adults use age 18.
_HEIGHT_AGES = (0.0, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18)
_HEIGHT_MALE = (50, 67, 76, 87, 96, 103, 110, 116, 128, 138, 149, 164, 173, 176)
_HEIGHT_FEMALE = (49, 65, 74, 86, 95, 102, 109, 115, 127, 138, 151, 160, 163, 163)
# Median BMI by age (kg/m2) for children; adults draw their own.
_BMI_CHILD = (13.5, 17.0, 17.0, 16.5, 16.0, 15.7, 15.5, 15.5, 16.0, 17.0, 18.0, 19.5, 20.5, 21.5)


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _clip(value: float, limit: float) -> float:
    """Keep a baseline deviation within ±limit (no 5-sigma outliers in a teaching dataset)."""
    return max(-limit, min(limit, value))


@dataclass(slots=True)
class Baseline:
    male: bool
    height_z: float  # the patient's height centile as a z-score, stable for life
    bmi_factor: float  # children: multiplier on the median BMI for age
    adult_bmi: float  # adults: BMI at the start of the history window
    bmi_slope: float  # kg/m2 per year
    sbp: float
    dbp: float
    hr: float
    rr: float
    temp: float
    spo2: float
    hba1c: float
    chol: float
    creat: float
    hgb: float

    @property
    def obese(self) -> bool:
        return self.adult_bmi >= 30.0


def make_baseline(rng: random.Random, male: bool, age: int) -> Baseline:
    """The baseline before any condition is known (conditions adjust it: ``apply_conditions``)."""
    g = rng.gauss
    adult_mean = 24.5 + 4.0 * min(max(age - 18, 0), 35) / 35 - 1.5 * max(age - 70, 0) / 30
    sbp = (80 + 2.0 * age) if age < 18 else (112 + 0.33 * (age - 18))
    return Baseline(
        male=male,
        height_z=max(-2.5, min(2.5, g(0, 1))),
        bmi_factor=math.exp(g(0, 0.10)),
        adult_bmi=adult_mean * math.exp(g(0, 0.17)),
        bmi_slope=g(0.1, 0.3),
        sbp=sbp + g(0, 8),
        dbp=0.0,
        hr=(130 if age < 1 else 110 if age < 4 else 90 if age < 12 else 72) + _clip(g(0, 7), 15),
        rr=(34 if age < 1 else 26 if age < 4 else 20 if age < 12 else 15) + _clip(g(0, 1.5), 3),
        temp=36.8 + g(0, 0.15),
        spo2=98.0 + g(0, 0.8),
        hba1c=5.2 + g(0, 0.25),
        chol=(160 if age < 18 else 185) + g(0, 22),
        creat=(0.95 if male else 0.75) * (0.6 if age < 12 else 1.0) * math.exp(g(0, 0.12)),
        hgb=(15.0 if male and age >= 14 else 13.4) + g(0, 0.9),
    )


def apply_conditions(b: Baseline, rng: random.Random, conditions: set[str]) -> None:
    g = rng.gauss
    if "hypertension" in conditions:
        b.sbp = max(b.sbp, 128) + 14 + abs(g(0, 8))
    if "diabetes" in conditions:
        b.hba1c = 7.4 + abs(g(0, 0.9))
    if "hyperlipidemia" in conditions:
        b.chol = 240 + abs(g(0, 20))
    if "ckd3" in conditions:
        b.creat = (1.7 if b.male else 1.4) * math.exp(g(0, 0.12))
        b.hgb -= 1.3
    if "copd" in conditions:
        b.spo2 = 93.0 + g(0, 1.0)
        b.rr += 3
    b.dbp = 0.62 * b.sbp + g(0, 4)


@dataclass(frozen=True, slots=True)
class Vitals:
    hr: int
    sbp: int
    dbp: int
    rr: int
    temp: float
    spo2: int
    height: float
    weight: float
    bmi: float


def measure_vitals(
    b: Baseline, rng: random.Random, age: float, years_in: float, acute: bool = False
) -> Vitals:
    """Vital signs at ``age`` (years, fractional), ``years_in`` years into the history window."""
    g = rng.gauss
    median_h = _interp(_HEIGHT_AGES, _HEIGHT_MALE if b.male else _HEIGHT_FEMALE, age)
    height = round(median_h * (1 + 0.04 * b.height_z), 1)
    if age < 18:
        bmi_true = _interp(_HEIGHT_AGES, _BMI_CHILD, age) * b.bmi_factor
    else:
        bmi_true = max(15.0, b.adult_bmi + b.bmi_slope * years_in + g(0, 0.2))
    weight = round(bmi_true * (height / 100) ** 2, 1)
    bmi = round(weight / (height / 100) ** 2, 1)
    sbp = b.sbp + g(0, 5) + (8 if acute else 0)
    return Vitals(
        hr=round(b.hr + g(0, 4) + (14 if acute else 0)),
        sbp=round(sbp),
        dbp=round(min(b.dbp + g(0, 3), sbp - 20)),
        rr=round(b.rr + g(0, 1) + (3 if acute else 0)),
        temp=round(b.temp + g(0, 0.15) + (abs(g(0.6, 0.6)) if acute else 0), 1),
        spo2=min(100, round(b.spo2 + g(0, 0.7) - (1 if acute else 0))),
        height=height,
        weight=weight,
        bmi=bmi,
    )


def lab_value(b: Baseline, rng: random.Random, loinc: str, years_in: float) -> float:
    """A lab result around the baseline: LOINC code → value in the table's UCUM unit."""
    g = rng.gauss
    if loinc == "4548-4":  # HbA1c %
        return max(4.0, b.hba1c + 0.1 * years_in + g(0, 0.15))
    if loinc == "2345-7":  # fasting glucose mg/dL, from the HbA1c (ADAG: eAG = 28.7*A1c - 46.7)
        return max(60.0, 28.7 * (b.hba1c + 0.1 * years_in) - 46.7 - 12 + g(0, 8))
    if loinc == "2093-3":  # total cholesterol mg/dL
        return max(100.0, b.chol + g(0, 8))
    if loinc == "2160-0":  # creatinine mg/dL
        return max(0.2, b.creat * (1 + 0.02 * years_in) + g(0, 0.04))
    if loinc == "718-7":  # hemoglobin g/dL
        return max(7.0, b.hgb + g(0, 0.3))
    raise KeyError(loinc)


_RANGES_MALE: dict[str, tuple[float | None, float | None]] = {
    "2345-7": (70.0, 99.0),
    "4548-4": (4.0, 5.6),
    "2093-3": (None, 200.0),
    "2160-0": (0.74, 1.35),
    "718-7": (13.2, 16.6),
}
_RANGES_FEMALE = {**_RANGES_MALE, "2160-0": (0.59, 1.04), "718-7": (11.6, 15.0)}


def reference_range(loinc: str, male: bool) -> tuple[float | None, float | None]:
    """Adult reference range (low, high) of a lab; creatinine and hemoglobin depend on sex."""
    return (_RANGES_MALE if male else _RANGES_FEMALE)[loinc]
