"""The twelve controls' stable ids, and how each can be switched (enforce / monitor / off): the
gateway's policy and the authorization server's issuance policy (`labcore/issuance.py`) alike."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BeforeValidator


class Mode(StrEnum):
    ENFORCE = "enforce"  # a violation is refused
    MONITOR = "monitor"  # a violation is recorded (audit, results) but the request proceeds
    OFF = "off"  # the check is not run


def _unquoted_off(value: Any) -> Any:
    """YAML 1.1 reads an unquoted `off` as false: in a mode field it can only mean "off"."""
    return Mode.OFF.value if value is False else value


# a mode as written in a YAML file: `C09: off` works unquoted
ModeField = Annotated[Mode, BeforeValidator(_unquoted_off)]


CONTROLS: Final[dict[str, str]] = {
    "C01": "patient-level scopes only for operational AI clients",
    "C02": "access token lifetime within policy",
    "C03": "no offline_access for AI clients",
    "C04": "bulk $export only for approved clients",
    "C05": "resource-specific scopes, no wildcards",
    "C06": "audit log of every request + anomaly alerts",
    "C07": "confidential client",
    "C08": "search narrowed to the patient in context",
    "C09": "revoked tokens refused",
    "C10": "tenant isolation",
    "C11": "AS down-scopes over-broad requests",
    "C12": "dangerous operations restricted",
}
