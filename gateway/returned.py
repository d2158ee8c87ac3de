"""One resource of a response, as the response checks and the audit record read it.

A response's resources are checked by several controls (C08 compartment, C10 tenant, C05 scope
constraints) and then counted for the audit record (the patients whose data went out). What more
than one of them needs — above all the patients a resource's references name, the costliest thing
read from it — is worked out on first use and kept, so each resource's references are walked once
per response whatever the number of controls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway.denial import Denial
from labcore.patient_compartment import AnswerText, compartment_patient_ids, referenced_patient_ids

__all__ = ["Returned", "first_refusal", "refusal"]


class Returned:
    """A returned resource (`resource`, the parsed JSON) and what is read from it, cached."""

    __slots__ = ("_compartment", "_referenced", "resource", "resource_type", "text")

    def __init__(self, resource: dict[str, Any], text: AnswerText | None = None) -> None:
        self.resource = resource
        self.text = text  # the text of the answer it came in, when the gateway has it
        rtype = resource.get("resourceType")
        self.resource_type: str | None = rtype if isinstance(rtype, str) else None
        self._compartment: frozenset[str] | None = None
        self._referenced: frozenset[str] | None = None

    @property
    def compartment_patients(self) -> frozenset[str]:
        """The patients whose compartment the resource is in (`compartment_patient_ids`)."""
        if self._compartment is None:
            self._compartment = compartment_patient_ids(self.resource)
        return self._compartment

    @property
    def referenced_patients(self) -> frozenset[str]:
        """Every patient any reference anywhere in the resource points at."""
        if self._referenced is None:
            self._referenced = referenced_patient_ids(self.resource)
        return self._referenced

    def other_patients(self, patient: str) -> frozenset[str]:
        """The patients other than `patient` that a reference in the resource points at. When
        the whole answer names no other patient, no resource of it can: nothing is walked."""
        if self.text is not None and self.text.names_only(patient):
            return frozenset()
        return self.referenced_patients - {patient}

    def __repr__(self) -> str:
        return f"Returned({self.resource_type}/{self.resource.get('id')})"


def refusal(
    checks: Iterable[tuple[str, Callable[[Returned], Denial | None]]], resource: Returned
) -> Denial | None:
    """The first of the response `checks` (control, check) that refuses `resource`, if any."""
    for _control, check in checks:
        denial = check(resource)
        if denial is not None:
            return denial
    return None


def first_refusal(
    checks: Iterable[tuple[str, Callable[[Returned], Denial | None]]],
    resources: Iterable[Returned],
) -> Denial | None:
    """The first refusal of the `checks` among `resources` (the resources of one entry, one
    export line), if any: they go out together or not at all."""
    checks = tuple(checks)  # the same tuple when given one
    for returned in resources:  # a plain loop: this runs for every entry of every answer
        for _control, check in checks:
            denial = check(returned)
            if denial is not None:
                return denial
    return None
