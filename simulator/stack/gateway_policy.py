"""`fhirlab up --controls C05=off,C08=monitor`: the gateway's policy with some controls switched.

The derived policy is written under the lab directory (never over gateway/policy.yaml) and the
gateway is restarted with it, so one lab can compare configurations without editing files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.controls import Mode
from gateway.policy import POLICY_FILE, RUNTIME_CONTROLS, load_policy
from labcore.errors import LabError


def parse_controls(text: str) -> dict[str, Mode]:
    """`C05=off,C08=monitor` (also `all=off`) -> {control: mode}."""
    modes: dict[str, Mode] = {}
    allowed_modes = ", ".join(m.value for m in Mode)
    for item in filter(None, (part.strip() for part in text.split(","))):
        control, sep, mode = item.partition("=")
        control = control.strip().upper()
        if not sep:
            raise LabError(f"--controls: {item!r} is not CONTROL=MODE", "e.g. C05=off,C08=monitor")
        try:
            value = Mode(mode.strip().lower())
        except ValueError:
            raise LabError(
                f"--controls: {mode!r} is not a mode", f"use one of {allowed_modes}"
            ) from None
        if control == "ALL":
            modes.update({c: value for c in RUNTIME_CONTROLS})
        elif control in RUNTIME_CONTROLS:
            modes[control] = value
        else:
            raise LabError(
                f"--controls: {control} has no run-time mode",
                f"switchable controls: {', '.join(RUNTIME_CONTROLS)} (or all)",
            )
    return modes


def write_policy(run_dir: Path, modes: dict[str, Mode], base: Path = POLICY_FILE) -> Path:
    """The base policy with `modes` applied, written to `<run_dir>/gateway-policy.yaml`."""
    policy = load_policy(base).with_modes(modes)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "gateway-policy.yaml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False))
    tmp.replace(path)
    return path
