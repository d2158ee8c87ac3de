"""The step interpreter: scenario steps turned into requests, their answers read (STYLE 4).

One interpreter, two drivers. `simulator.replay.engine` runs each step whole (`perform`) with
httpx; the Locust users of `simulator.load.users` take one request of a step's `Walk` per task
run with Locust's client and report it as a request event. See `simulator.steps.interpreter`.
"""

from simulator.steps.answers import Outcome, classify, describe, next_page, record
from simulator.steps.interpreter import Session, Walk, perform, refresh
from simulator.steps.wire import Part, Reply, StepRequest, Transport

__all__ = [
    "Outcome",
    "Part",
    "Reply",
    "Session",
    "StepRequest",
    "Transport",
    "Walk",
    "classify",
    "describe",
    "next_page",
    "perform",
    "record",
    "refresh",
]
