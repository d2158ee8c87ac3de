"""Gateway stages: one module per control (or group of controls), each a small class.

A stage declares `checks`: (control id, coroutine) pairs. The pipeline runs each check whose
control is not `off`; a check refuses by raising `Denial`. Whether that refusal is enforced or only
recorded (monitor mode) is the pipeline's decision, by the policy's mode for that control — a stage
never needs to know.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar

from gateway.context import RequestContext

Check = Callable[[RequestContext], Awaitable[None]]


class Stage(ABC):
    name: ClassVar[str]

    @abstractmethod
    def checks(self) -> list[tuple[str | None, Check]]:
        """(control id, check) pairs, in the order they run."""
