"""What to generate: one frozen options object, checked once when it is made."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from seed.ids import MAX_TENANTS

MAX_PATIENTS = 10_000_000
MAX_SEED = 2**63 - 1

#: The "today" of a generated population unless told otherwise. Fixed, not ``date.today()``, so
#: that the same seed gives byte-identical output on any day; pass ``reference_date`` to move the
#: population (past encounters, future appointments) relative to another day.
DEFAULT_REFERENCE_DATE = date(2025, 6, 2)


class OptionsError(ValueError):
    """An option is out of range; the message names the field, the value and what is allowed."""


@dataclass(frozen=True, slots=True)
class PopulationOptions:
    """Options of a synthetic population.

    ``patients`` patients are dealt round-robin over ``tenants`` organisations (tenant-a, tenant-b,
    …); each organisation has ``practitioners_per_org`` practitioners. Encounters, observations and
    appointments cover the ``history_years`` before ``reference_date`` (future appointments the 90
    days after it). ``sensitive_share`` is the share of patients aged 13+ who get a record in a
    sensitive category (behavioural health, HIV, opioid use disorder) carrying security labels.
    """

    patients: int
    seed: int
    tenants: int = 2
    practitioners_per_org: int = 8
    history_years: int = 2
    sensitive_share: float = 0.12
    reference_date: date = DEFAULT_REFERENCE_DATE

    def __post_init__(self) -> None:
        _check_int("patients", self.patients, 0, MAX_PATIENTS)
        _check_int("seed", self.seed, 0, MAX_SEED)
        _check_int("tenants", self.tenants, 1, MAX_TENANTS, "(tenant ids are tenant-a … tenant-z)")
        _check_int("practitioners_per_org", self.practitioners_per_org, 1, 999)
        _check_int("history_years", self.history_years, 1, 20)
        share = self.sensitive_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise OptionsError(
                f"PopulationOptions.sensitive_share must be a number between 0 and 1; got {share!r}"
            )
        ref = self.reference_date
        if not isinstance(ref, date) or hasattr(ref, "hour"):
            raise OptionsError(
                "PopulationOptions.reference_date must be a datetime.date (not a datetime or "
                f"string); got {ref!r}"
            )
        if not date(1990, 1, 1) <= ref <= date(2100, 12, 31):
            raise OptionsError(
                f"PopulationOptions.reference_date must be between 1990-01-01 and 2100-12-31; "
                f"got {ref.isoformat()}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PopulationOptions:
        """Build from plain data (CLI, YAML, JSON); ``reference_date`` may be an ISO string."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(
                f"unknown population option(s) {', '.join(unknown)}; "
                f"known options are {', '.join(sorted(known))}"
            )
        missing = sorted({"patients", "seed"} - set(values))
        if missing:
            raise OptionsError(f"population option(s) {', '.join(missing)} must be given")
        data = dict(values)
        ref = data.get("reference_date")
        if isinstance(ref, str):
            try:
                data["reference_date"] = date.fromisoformat(ref)
            except ValueError:
                raise OptionsError(
                    f"PopulationOptions.reference_date must be an ISO date like 2025-06-02; "
                    f"got {ref!r}"
                ) from None
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options, recorded in every output so a population can be regenerated."""
        out: dict[str, Any] = dataclasses.asdict(self)
        out["reference_date"] = self.reference_date.isoformat()
        return out


def _check_int(name: str, value: object, low: int, high: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"PopulationOptions.{name} must be an integer; got {value!r}")
    if not low <= value <= high:
        suffix = f" {note}" if note else ""
        raise OptionsError(
            f"PopulationOptions.{name} must be between {low} and {high}{suffix}; got {value}"
        )
