"""Curated code tables: terminology is data, kept in one place.

Codes were checked against public sources: SNOMED CT / RxNorm / CVX codes as used by Synthea
modules and VSAC value-set expansions, LOINC codes as bound by the FHIR R4 vital-signs profile,
HL7 terminology (THO) for ActCode / Confidentiality / category systems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBS_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
MEDREQ_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
MARITAL_STATUS = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
SERVICE_TYPE = "http://terminology.hl7.org/CodeSystem/service-type"
APPOINTMENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"
DOCREF_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
TENANT_TAG_SYSTEM = "https://fhirlab.dev/tenant"


@dataclass(frozen=True, slots=True)
class Code:
    """A code, with its FHIR ``Coding`` and ``CodeableConcept`` JSON built once.

    ``coding`` and ``concept`` are shared by every resource that uses the code (building them per
    resource was a third of the generation time): treat generated resources as read-only, and
    ``copy.deepcopy`` one before mutating anything nested inside it.
    """

    system: str
    code: str
    display: str
    coding: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)
    concept: dict[str, Any] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        coding = {"system": self.system, "code": self.code, "display": self.display}
        object.__setattr__(self, "coding", coding)
        object.__setattr__(self, "concept", {"coding": [coding], "text": self.display})


def _c(system: str, code: str, display: str) -> Code:
    return Code(system, code, display)


# --- security labels -------------------------------------------------------------------------

RESTRICTED = _c(CONFIDENTIALITY, "R", "restricted")
PSY = _c(ACT_CODE, "PSY", "psychiatry information sensitivity")
BH = _c(ACT_CODE, "BH", "behavioral health information sensitivity")
HIV = _c(ACT_CODE, "HIV", "HIV/AIDS information sensitivity")
SUD = _c(ACT_CODE, "SUD", "substance use disorder information sensitivity")
ETH = _c(ACT_CODE, "ETH", "substance abuse information sensitivity")

#: Sensitivity category → the labels every resource of that category carries in ``meta.security``.
SECURITY_LABELS: dict[str, tuple[Code, ...]] = {
    "BH": (PSY, BH, RESTRICTED),
    "HIV": (HIV, RESTRICTED),
    "SUD": (SUD, ETH, RESTRICTED),
}

# --- observations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObsDef:
    """An observation kind: LOINC code, UCUM unit (display and code), category, decimals."""

    code: Code
    unit: str
    ucum: str
    category: str
    decimals: int


def _o(code: str, display: str, unit: str, ucum: str, category: str, decimals: int) -> ObsDef:
    return ObsDef(_c(LOINC, code, display), unit, ucum, category, decimals)


VS, LAB, SURVEY = "vital-signs", "laboratory", "survey"
CATEGORY_DISPLAY = {VS: "Vital Signs", LAB: "Laboratory", SURVEY: "Survey"}

HEART_RATE = _o("8867-4", "Heart rate", "/min", "/min", VS, 0)
RESP_RATE = _o("9279-1", "Respiratory rate", "/min", "/min", VS, 0)
BODY_TEMP = _o("8310-5", "Body temperature", "Cel", "Cel", VS, 1)
BODY_WEIGHT = _o("29463-7", "Body weight", "kg", "kg", VS, 1)
BODY_HEIGHT = _o("8302-2", "Body height", "cm", "cm", VS, 1)
BMI = _o("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2", VS, 1)
SPO2 = _o("2708-6", "Oxygen saturation in Arterial blood", "%", "%", VS, 0)
BP_PANEL = _c(LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = _o("8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]", VS, 0)
DIASTOLIC = _o("8462-4", "Diastolic blood pressure", "mm[Hg]", "mm[Hg]", VS, 0)

GLUCOSE = _o("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", LAB, 0)
HBA1C = _o("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%", LAB, 1)
CHOLESTEROL = _o("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", LAB, 0)
CREATININE = _o("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", LAB, 2)
HEMOGLOBIN = _o("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "g/dL", LAB, 1)
HIV_VIRAL_LOAD = _o(
    "20447-9",
    "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe detection",
    "copies/mL",
    "{copies}/mL",
    LAB,
    0,
)
CD4_COUNT = _o(
    "24467-3", "CD3+CD4+ (T4 helper) cells [#/volume] in Blood", "cells/uL", "/uL", LAB, 0
)
PHQ9 = _o(
    "44261-6",
    "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    "{score}",
    "{score}",
    SURVEY,
    0,
)
GAD7 = _o(
    "70274-6",
    "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
    "{score}",
    "{score}",
    SURVEY,
    0,
)

# --- medications (RxNorm SCD) ------------------------------------------------------------------

METFORMIN = _c(
    RXNORM, "860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"
)
LISINOPRIL = _c(RXNORM, "314076", "lisinopril 10 MG Oral Tablet")
AMLODIPINE = _c(RXNORM, "197361", "amlodipine 5 MG Oral Tablet")
HCTZ = _c(RXNORM, "310798", "hydrochlorothiazide 25 MG Oral Tablet")
ATORVASTATIN = _c(RXNORM, "617310", "atorvastatin 20 MG Oral Tablet")
SIMVASTATIN = _c(RXNORM, "312961", "simvastatin 20 MG Oral Tablet")
ALBUTEROL = _c(RXNORM, "745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler")
FLUTICASONE = _c(
    RXNORM, "895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"
)
SERTRALINE = _c(RXNORM, "312941", "sertraline 50 MG Oral Tablet")
BIKTARVY = _c(
    RXNORM,
    "1999667",
    "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet",
)
BUPRENORPHINE_NALOXONE = _c(
    RXNORM, "1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film"
)

#: Medication → (dosage text, as needed).
DOSAGE: dict[str, tuple[str, bool]] = {
    METFORMIN.code: ("Take 1 tablet by mouth once daily with the evening meal", False),
    LISINOPRIL.code: ("Take 1 tablet by mouth once daily", False),
    AMLODIPINE.code: ("Take 1 tablet by mouth once daily", False),
    HCTZ.code: ("Take 1 tablet by mouth once daily in the morning", False),
    ATORVASTATIN.code: ("Take 1 tablet by mouth once daily", False),
    SIMVASTATIN.code: ("Take 1 tablet by mouth once daily in the evening", False),
    ALBUTEROL.code: ("Inhale 2 puffs every 4 to 6 hours as needed for wheezing", True),
    FLUTICASONE.code: ("Inhale 2 puffs twice daily", False),
    SERTRALINE.code: ("Take 1 tablet by mouth once daily", False),
    BIKTARVY.code: ("Take 1 tablet by mouth once daily", False),
    BUPRENORPHINE_NALOXONE.code: ("Dissolve 1 film under the tongue once daily", False),
}

# --- conditions --------------------------------------------------------------------------------

#: Lower bounds of the age bands used by ``ConditionDef.prevalence``.
AGE_BANDS = (0, 18, 30, 45, 60, 75)


@dataclass(frozen=True, slots=True)
class ConditionDef:
    """A condition: codings, prevalence per age band, treatment and follow-up."""

    key: str
    snomed: Code
    icd10: Code
    prevalence: tuple[float, ...]  # one per AGE_BANDS entry; 0 for sensitive (drawn apart)
    min_onset_age: int
    medications: tuple[Code, ...]  # alternatives for the first line; one is prescribed
    treated_share: float  # share of patients with the condition who get a MedicationRequest
    followups_per_year: float
    followup_labs: tuple[ObsDef, ...]
    sensitivity: str | None = None  # a key of SECURITY_LABELS


def _cond(key: str, sct: tuple[str, str], icd: tuple[str, str], **kw: object) -> ConditionDef:
    return ConditionDef(key, _c(SNOMED, *sct), _c(ICD10CM, *icd), **kw)  # type: ignore[arg-type]


CONDITIONS: tuple[ConditionDef, ...] = (
    _cond("hypertension", ("59621000", "Essential hypertension (disorder)"),
          ("I10", "Essential (primary) hypertension"),
          prevalence=(0.01, 0.06, 0.16, 0.36, 0.58, 0.72), min_onset_age=12,
          medications=(LISINOPRIL, AMLODIPINE, HCTZ), treated_share=0.8,
          followups_per_year=1.0, followup_labs=(CREATININE,)),
    _cond("hyperlipidemia", ("55822004", "Hyperlipidemia (disorder)"),
          ("E78.5", "Hyperlipidemia, unspecified"),
          prevalence=(0.005, 0.04, 0.14, 0.30, 0.44, 0.47), min_onset_age=12,
          medications=(ATORVASTATIN, SIMVASTATIN), treated_share=0.7,
          followups_per_year=0.5, followup_labs=(CHOLESTEROL,)),
    _cond("diabetes", ("44054006", "Diabetes mellitus type 2 (disorder)"),
          ("E11.9", "Type 2 diabetes mellitus without complications"),
          prevalence=(0.002, 0.01, 0.05, 0.13, 0.22, 0.24), min_onset_age=10,
          medications=(METFORMIN,), treated_share=0.85,
          followups_per_year=2.0, followup_labs=(HBA1C, GLUCOSE)),
    _cond("asthma", ("195967001", "Asthma (disorder)"),
          ("J45.909", "Unspecified asthma, uncomplicated"),
          prevalence=(0.07, 0.08, 0.08, 0.08, 0.08, 0.07), min_onset_age=2,
          medications=(ALBUTEROL, FLUTICASONE), treated_share=0.9,
          followups_per_year=0.5, followup_labs=()),
    _cond("copd", ("13645005", "Chronic obstructive lung disease (disorder)"),
          ("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
          prevalence=(0.0, 0.002, 0.01, 0.05, 0.10, 0.12), min_onset_age=35,
          medications=(ALBUTEROL,), treated_share=0.9,
          followups_per_year=1.0, followup_labs=()),
    _cond("ckd3", ("433144002", "Chronic kidney disease stage 3 (disorder)"),
          ("N18.30", "Chronic kidney disease, stage 3 unspecified"),
          prevalence=(0.0, 0.002, 0.01, 0.04, 0.12, 0.25), min_onset_age=25,
          medications=(), treated_share=0.0,
          followups_per_year=1.0, followup_labs=(CREATININE, HEMOGLOBIN)),
    _cond("osteoarthritis", ("239873007", "Osteoarthritis of knee (disorder)"),
          ("M17.9", "Osteoarthritis of knee, unspecified"),
          prevalence=(0.0, 0.005, 0.03, 0.10, 0.24, 0.34), min_onset_age=30,
          medications=(), treated_share=0.0,
          followups_per_year=0.3, followup_labs=()),
    # Obesity is diagnosed from the patient's BMI baseline (see physiology), not from a table.
    _cond("obesity", ("414916001", "Obesity (disorder)"), ("E66.9", "Obesity, unspecified"),
          prevalence=(0.0,) * 6, min_onset_age=2,
          medications=(), treated_share=0.0, followups_per_year=0.0, followup_labs=()),
    # Sensitive conditions: prevalence 0 here, drawn with PopulationOptions.sensitive_share.
    _cond("depression", ("35489007", "Depressive disorder (disorder)"),
          ("F32.A", "Depression, unspecified"),
          prevalence=(0.0,) * 6, min_onset_age=12, medications=(SERTRALINE,), treated_share=0.7,
          followups_per_year=3.0, followup_labs=(PHQ9,), sensitivity="BH"),
    _cond("ptsd", ("47505003", "Posttraumatic stress disorder (disorder)"),
          ("F43.10", "Post-traumatic stress disorder, unspecified"),
          prevalence=(0.0,) * 6, min_onset_age=12, medications=(SERTRALINE,), treated_share=0.6,
          followups_per_year=3.0, followup_labs=(PHQ9,), sensitivity="BH"),
    _cond("anxiety", ("197480006", "Anxiety disorder (disorder)"),
          ("F41.9", "Anxiety disorder, unspecified"),
          prevalence=(0.0,) * 6, min_onset_age=12, medications=(SERTRALINE,), treated_share=0.5,
          followups_per_year=2.0, followup_labs=(GAD7,), sensitivity="BH"),
    _cond("hiv", ("86406008", "Human immunodeficiency virus infection (disorder)"),
          ("B20", "Human immunodeficiency virus [HIV] disease"),
          prevalence=(0.0,) * 6, min_onset_age=16, medications=(BIKTARVY,), treated_share=0.95,
          followups_per_year=2.0, followup_labs=(HIV_VIRAL_LOAD, CD4_COUNT), sensitivity="HIV"),
    _cond("oud", ("75544000", "Opioid dependence (disorder)"),
          ("F11.20", "Opioid dependence, uncomplicated"),
          prevalence=(0.0,) * 6, min_onset_age=16, medications=(BUPRENORPHINE_NALOXONE,),
          treated_share=0.8, followups_per_year=2.0, followup_labs=(), sensitivity="SUD"),
)  # fmt: skip

CONDITION_BY_KEY: dict[str, ConditionDef] = {c.key: c for c in CONDITIONS}
COMMON_CONDITIONS = tuple(c for c in CONDITIONS if any(c.prevalence))

#: Sensitive draws: (condition key, weight, minimum age).
SENSITIVE_CHOICES: tuple[tuple[str, float, int], ...] = (
    ("depression", 0.40, 13),
    ("anxiety", 0.15, 13),
    ("ptsd", 0.15, 18),
    ("hiv", 0.12, 18),
    ("oud", 0.18, 18),
)

# --- allergies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllergyDef:
    substance: Code
    category: str  # food | medication | environment
    weight: float
    reactions: tuple[Code, ...]


WHEAL = _c(SNOMED, "247472004", "Wheal (finding)")
ANAPHYLAXIS = _c(SNOMED, "39579001", "Anaphylaxis (disorder)")
SKIN_ERUPTION = _c(SNOMED, "271807003", "Eruption of skin (disorder)")
DYSPNEA = _c(SNOMED, "267036007", "Dyspnea (finding)")
RHINOCONJUNCTIVITIS = _c(SNOMED, "878820003", "Rhinoconjunctivitis (disorder)")
ITCHING = _c(SNOMED, "418290006", "Itching (finding)")

ALLERGIES: tuple[AllergyDef, ...] = (
    AllergyDef(_c(RXNORM, "7984", "penicillin V"), "medication", 0.30,
               (WHEAL, SKIN_ERUPTION, ANAPHYLAXIS)),
    AllergyDef(_c(RXNORM, "10831", "sulfamethoxazole / trimethoprim"), "medication", 0.12,
               (SKIN_ERUPTION, WHEAL)),
    AllergyDef(_c(RXNORM, "1191", "aspirin"), "medication", 0.05, (WHEAL, DYSPNEA)),
    AllergyDef(_c(RXNORM, "2231", "cephalexin"), "medication", 0.05, (SKIN_ERUPTION,)),
    AllergyDef(_c(SNOMED, "762952008", "Peanut (substance)"), "food", 0.08,
               (WHEAL, ANAPHYLAXIS, DYSPNEA)),
    AllergyDef(_c(SNOMED, "442571000124108", "Tree nut (substance)"), "food", 0.04,
               (WHEAL, ANAPHYLAXIS)),
    AllergyDef(_c(SNOMED, "735971005", "Fish (substance)"), "food", 0.03, (SKIN_ERUPTION,)),
    AllergyDef(_c(SNOMED, "782576004", "Tree pollen (substance)"), "environment", 0.10,
               (RHINOCONJUNCTIVITIS, ITCHING)),
    AllergyDef(_c(SNOMED, "256277009", "Grass pollen (substance)"), "environment", 0.08,
               (RHINOCONJUNCTIVITIS,)),
    AllergyDef(_c(SNOMED, "264287008", "Animal dander (substance)"), "environment", 0.07,
               (RHINOCONJUNCTIVITIS, WHEAL)),
    AllergyDef(_c(SNOMED, "260147004", "House dust mite (organism)"), "environment", 0.05,
               (RHINOCONJUNCTIVITIS,)),
    AllergyDef(_c(SNOMED, "288328004", "Bee venom (substance)"), "environment", 0.03,
               (ANAPHYLAXIS, SKIN_ERUPTION)),
)  # fmt: skip

# --- immunizations (CVX) -----------------------------------------------------------------------

HEPB_PEDIATRIC = _c(CVX, "08", "Hep B, adolescent or pediatric")
MMR = _c(CVX, "03", "MMR")
TDAP = _c(CVX, "115", "Tdap")
INFLUENZA = _c(CVX, "140", "Influenza, seasonal, injectable, preservative free")
COVID19_MRNA = _c(
    CVX,
    "208",
    "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
)
PNEUMO_PPSV23 = _c(CVX, "33", "pneumococcal polysaccharide vaccine, 23 valent")

# --- encounters, appointments, documents -------------------------------------------------------

AMBULATORY = _c(ACT_CODE, "AMB", "ambulatory")
EMERGENCY = _c(ACT_CODE, "EMER", "emergency")
INPATIENT = _c(ACT_CODE, "IMP", "inpatient encounter")

GENERAL_EXAM = _c(SNOMED, "162673000", "General examination of patient (procedure)")
WELL_CHILD = _c(SNOMED, "410620009", "Well child visit (procedure)")
FOLLOW_UP = _c(SNOMED, "390906007", "Follow-up encounter (procedure)")
ER_ADMISSION = _c(SNOMED, "50849002", "Emergency room admission (procedure)")
HOSPITAL_ADMISSION = _c(SNOMED, "32485007", "Hospital admission (procedure)")

PRIMARY_PERFORMER = _c(PARTICIPATION_TYPE, "PPRF", "primary performer")
GENERAL_PRACTICE = _c(SERVICE_TYPE, "124", "General Practice")
PSYCHIATRY = _c(SNOMED, "394587001", "Psychiatry")
ROUTINE = _c(APPOINTMENT_TYPE, "ROUTINE", "Routine appointment - default if not valued")
FOLLOWUP_APPT = _c(APPOINTMENT_TYPE, "FOLLOWUP", "A follow up visit from a previous appointment")
CHECKUP = _c(APPOINTMENT_TYPE, "CHECKUP", "A routine check-up, such as an annual physical")

PROGRESS_NOTE = _c(LOINC, "11506-3", "Progress note")
MH_PROGRESS_NOTE = _c(LOINC, "34904-3", "Mental health Progress note")
DISCHARGE_SUMMARY = _c(LOINC, "18842-5", "Discharge summary")
CLINICAL_NOTE = _c(DOCREF_CATEGORY, "clinical-note", "Clinical Note")

MRN_TYPE = _c(IDENTIFIER_TYPE, "MR", "Medical record number")
NPI_TYPE = _c(IDENTIFIER_TYPE, "NPI", "National provider identifier")
PROVIDER_ORG = _c(ORGANIZATION_TYPE, "prov", "Healthcare Provider")

ED_COMPLAINTS = (
    "Chest pain", "Abdominal pain", "Laceration of hand", "Fall at home", "Fever",
    "Shortness of breath", "Ankle sprain", "Headache", "Back pain", "Allergic reaction",
)  # fmt: skip
