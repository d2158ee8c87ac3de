"""The checklist `fhirlab audit` answers: the twelve controls, each with the HIPAA Security and
Privacy Rule provisions it serves, and the shape of an answer (status and evidence).

The provisions cited:

- 45 CFR 164.312(a)(1), access control: only authorized persons and software reach ePHI;
- 45 CFR 164.312(b), audit controls: activity in systems holding ePHI is recorded and examinable;
- 45 CFR 164.308(a)(1)(ii)(D), information system activity review: those records are reviewed;
- 45 CFR 164.502(b), minimum necessary: a use or disclosure is limited to what its purpose needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

ACCESS_CONTROL: Final = "45 CFR 164.312(a)(1)"
AUDIT_CONTROLS: Final = "45 CFR 164.312(b)"
ACTIVITY_REVIEW: Final = "45 CFR 164.308(a)(1)(ii)(D)"
MINIMUM_NECESSARY: Final = "45 CFR 164.502(b)"


@dataclass(frozen=True, slots=True)
class Item:
    """One checklist item: a control, what it asks, the provisions it serves."""

    control: str
    title: str
    asks: str
    provisions: tuple[str, ...]


CHECKLIST: Final[tuple[Item, ...]] = (
    Item(
        "C01",
        "patient-level scopes only for AI clients",
        "an AI client gets patient/ scopes, not user/ or system/ ones",
        (ACCESS_CONTROL, MINIMUM_NECESSARY),
    ),
    Item(
        "C02",
        "short-lived access tokens",
        "access tokens expire within 15 minutes",
        (ACCESS_CONTROL,),
    ),
    Item(
        "C03",
        "no offline access for AI clients",
        "an AI client gets no offline_access refresh token",
        (ACCESS_CONTROL,),
    ),
    Item(
        "C04",
        "no bulk export for AI clients",
        "an AI client's token cannot start a bulk $export",
        (ACCESS_CONTROL, MINIMUM_NECESSARY),
    ),
    Item(
        "C05",
        "resource-specific scopes",
        "no wildcard scopes; requests outside the granted types are refused",
        (ACCESS_CONTROL, MINIMUM_NECESSARY),
    ),
    Item(
        "C06",
        "audit trail and anomaly review",
        "every request is recorded and the records are reviewed",
        (AUDIT_CONTROLS, ACTIVITY_REVIEW),
    ),
    Item(
        "C07",
        "confidential clients",
        "server-side AI clients authenticate (no public clients); PKCE is S256 only",
        (ACCESS_CONTROL,),
    ),
    Item(
        "C08",
        "patient-context binding",
        "a patient token reaches only its patient's compartment",
        (ACCESS_CONTROL, MINIMUM_NECESSARY),
    ),
    Item(
        "C09",
        "revocation",
        "a revoked token is refused, and revocation and introspection are offered",
        (ACCESS_CONTROL,),
    ),
    Item(
        "C10",
        "tenant isolation",
        "a token of one organisation reaches no other organisation's data",
        (ACCESS_CONTROL,),
    ),
    Item(
        "C11",
        "down-scoping of over-broad requests",
        "the authorization server grants less than an over-broad request asks",
        (MINIMUM_NECESSARY,),
    ),
    Item(
        "C12",
        "dangerous operations restricted",
        "operations such as $export, $everything and $expunge are not open to every client",
        (ACCESS_CONTROL, MINIMUM_NECESSARY),
    ),
)
ITEMS: Final[dict[str, Item]] = {item.control: item for item in CHECKLIST}


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CHECKED = "not checked"  # the audit was not given what the item needs


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation: what was asked of the target, and what it answered."""

    probe: str  # e.g. "GET /.well-known/smart-configuration"
    observed: str
    verdict: Status


@dataclass(slots=True)
class Answer:
    """One item's answer: failed if any evidence failed, passed if some passed and none failed."""

    item: Item
    evidence: list[Evidence] = field(default_factory=list)
    needs: str = ""  # what the audit would need to check it, when nothing was observed

    @property
    def status(self) -> Status:
        verdicts = {e.verdict for e in self.evidence}
        if Status.FAIL in verdicts:
            return Status.FAIL
        if Status.PASS in verdicts:
            return Status.PASS
        return Status.NOT_CHECKED

    def add(self, probe: str, observed: str, ok: bool) -> None:
        self.evidence.append(Evidence(probe, observed, Status.PASS if ok else Status.FAIL))

    def note(self, probe: str, observed: str) -> None:
        """Something observed that decides nothing on its own."""
        self.evidence.append(Evidence(probe, observed, Status.NOT_CHECKED))

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.item.control,
            "title": self.item.title,
            "asks": self.item.asks,
            "provisions": list(self.item.provisions),
            "status": self.status.value,
            "needs": self.needs,
            "evidence": [
                {"probe": e.probe, "observed": e.observed, "verdict": e.verdict.value}
                for e in self.evidence
            ],
        }


def parse_only(text: str | None) -> tuple[str, ...]:
    """`--only C02,C08` → the controls, in checklist order; ValueError names unknown ones."""
    if not text:
        return tuple(ITEMS)
    wanted = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(ITEMS))
    if unknown:
        raise ValueError(f"not checklist items: {', '.join(unknown)} (C01-C12)")
    return tuple(c for c in ITEMS if c in wanted)
