"""Gateway stages: one module per control (or group of controls), each a small class.

A stage declares `checks`: (control id, coroutine) pairs. The pipeline runs each check whose
control is not `off`; a check refuses by raising `Denial`. Whether that refusal is enforced or only
recorded (monitor mode) is the pipeline's decision, by the policy's mode for that control — a stage
never needs to know.

Stages talk to each other only through the request context (`gateway/context.py`), so each one
states which of its fields it `reads` and `writes`. `check_order` refuses a pipeline in which a
stage reads what only a later stage writes (the token before the checks that read it), and the
unit tests hold every stage to its `writes` (tests/unit/gateway/test_stage_contracts.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, Final

from gateway.context import RequestContext

Check = Callable[[RequestContext], Awaitable[None]]


# Fields of the request context that are set before any stage runs (from the request itself).
REQUEST_FIELDS: Final = frozenset(
    {"bearer", "fhir", "body", "upstream_params", "if_none_exist", "stored"}
)


class Stage(ABC):
    name: ClassVar[str]
    reads: ClassVar[frozenset[str]]  # request-context fields the checks read
    writes: ClassVar[frozenset[str]]  # ... and the ones they may change

    @abstractmethod
    def checks(self) -> list[tuple[str | None, Check]]:
        """(control id, check) pairs, in the order they run."""


def check_order(stages: list[Stage]) -> None:
    """Raise ValueError if a stage reads a field that no earlier stage writes and that the
    request itself does not set."""
    available = set(REQUEST_FIELDS)
    for stage in stages:
        missing = stage.reads - available
        if missing:
            raise ValueError(
                f"stage {stage.name} reads {sorted(missing)} before any stage writes it"
            )
        available |= stage.writes
