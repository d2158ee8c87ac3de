"""The fixed vocabularies of scenario files: control ids, verdicts, detectors."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

ControlId = Literal[
    "C01", "C02", "C03", "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C11", "C12"
]
CONTROLS: Final[tuple[str, ...]] = tuple(f"C{n:02d}" for n in range(1, 13))

Alert = Literal[
    "volume",
    "patient_fanout",
    "paging_walk",
    "wildcard_demographics",
    "out_of_profile",
    "off_hours",
]


class Verdict(StrEnum):
    """The lab's verdict per control (see docs/reference/scenarios.md for the rule)."""

    HELD = "held"
    VIOLATED = "violated"
    NA = "n/a"


class Kind(StrEnum):
    GOOD = "good"
    MISCONFIGURED = "misconfigured"
    HOSTILE = "hostile"


class Launch(StrEnum):
    STANDALONE = "standalone"  # patient-facing app: the user logs in, launch/patient
    EHR = "ehr"  # launched from the lab's EHR with a signed launch handle
    BACKEND = "backend"  # SMART Backend Services: client_credentials, no user
    NONE = "none"  # no token at all: requests go out unauthenticated


class User(StrEnum):
    MY_PATIENT = "my-patient"  # the portal login of {my_patient}
    PRACTITIONER = "practitioner"  # a practitioner of the tenant (EHR launch for {my_patient})
