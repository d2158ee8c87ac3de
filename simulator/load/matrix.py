"""The controls matrix of a load run: which gateway configurations are measured, in order.

`off` runs every run-time control off (the token stage stays on: signature, issuer, audience,
expiry); `C01`, `C02`, ... run one control enforced and the others off; `all` enforces every
run-time control. `off` comes first, since every other configuration is compared with it.
`off-2` is a second gateway exactly like `off`: compared with `off`, it gives the run's noise
floor (an A/A pair: the cost the run would report for no difference at all); a matrix with
`off` and anything else gets it unless asked not to. `direct` is no gateway at all: the same
requests sent to HAPI FHIR itself, against which the whole gateway's cost is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from gateway.controls import Mode
from gateway.policy import RUNTIME_CONTROLS, load_policy
from labcore.errors import LabError

OFF = "off"
AA = "off-2"  # the A/A twin of `off`: the noise floor
ALL = "all"
DIRECT = "direct"  # HAPI FHIR itself, no gateway
MATRIX_NAMES: tuple[str, ...] = (OFF, AA, *RUNTIME_CONTROLS, ALL, DIRECT)
NAMED_LOWER = (OFF, AA, ALL, DIRECT)


@dataclass(frozen=True, slots=True)
class Configuration:
    """One gateway configuration of the matrix: its name and the mode of every run-time control."""

    name: str
    modes: tuple[tuple[str, Mode], ...]
    direct: bool = False  # no gateway: the requests go to HAPI FHIR itself
    # more arguments for its gateway's command line (`python -m gateway`); the load method's
    # tests give one a delay (`--test-delay-ms`) to check that the run finds it
    server_args: tuple[str, ...] = ()
    # its gateway's policy file, when not the lab's: `fhirlab compare` measures two policies
    # side by side, each a configuration with the file's own modes
    policy: str | None = None

    @property
    def controls(self) -> dict[str, str]:
        return {control: str(mode) for control, mode in self.modes}

    @property
    def enforced(self) -> tuple[str, ...]:
        return tuple(c for c, m in self.modes if m is Mode.ENFORCE)


def configuration(name: str) -> Configuration:
    """The configuration called `name` (one of MATRIX_NAMES)."""
    if name not in MATRIX_NAMES:
        raise ValueError(f"unknown configuration {name!r}")
    if name == DIRECT:
        return Configuration(DIRECT, (), direct=True)
    if name == ALL:
        on: set[str] = set(RUNTIME_CONTROLS)
    elif name in (OFF, AA):
        on = set()
    else:
        on = {name}
    return Configuration(
        name, tuple((c, Mode.ENFORCE if c in on else Mode.OFF) for c in RUNTIME_CONTROLS)
    )


def policy_configuration(name: str, path: Path) -> Configuration:
    """A configuration that runs the policy file `path` as it is (its own modes)."""
    policy = load_policy(path)
    modes = tuple((c, policy.mode(c)) for c in RUNTIME_CONTROLS)
    return Configuration(name, modes, policy=str(path))


def full_matrix() -> list[Configuration]:
    """Every configuration but `direct` (named when wanted: it measures the whole gateway, not a
    control)."""
    return [configuration(name) for name in MATRIX_NAMES if name != DIRECT]


def parse_matrix(text: str | None, noise_floor: bool = True) -> list[Configuration]:
    """`off,all,C05` → those configurations, in the matrix's order (`off` first); None or empty:
    the full matrix. Names are case-insensitive; repeats count once. With `noise_floor`, a choice
    of `off` and another configuration gets `off-2` too; without it, `off-2` only if named.
    Unknown names raise a LabError that lists the valid ones."""
    if text is None or not text.strip():
        full = full_matrix()
        return full if noise_floor else [c for c in full if c.name != AA]
    wanted: list[str] = []
    unknown: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name = item.lower() if item.lower() in NAMED_LOWER else item.upper()
        if name in MATRIX_NAMES:
            if name not in wanted:
                wanted.append(name)
        else:
            unknown.append(item)
    if unknown or not wanted:
        config_only = sorted({"C07", "C11"} & {u.upper() for u in unknown})
        note = ""
        if config_only:
            what = "a configuration control" if len(config_only) == 1 else "configuration controls"
            note = (
                f" ({', '.join(config_only)}: {what}, audited against Keycloak, with no "
                "run-time mode)"
            )
        raise LabError(
            f"unknown configuration(s) in --matrix: {', '.join(unknown) or repr(text)}{note}",
            f"choose from {', '.join(MATRIX_NAMES)} (comma-separated)",
        )
    if noise_floor and OFF in wanted and set(wanted) - {OFF, AA}:
        wanted.append(AA)
    return [configuration(name) for name in MATRIX_NAMES if name in wanted]


def with_controls_off(configs: list[Configuration], off: tuple[str, ...]) -> list[Configuration]:
    """The matrix with `off` switched off in every configuration (enforced elsewhere: at the
    authorization server, `fhirlab load --enforce-at as`). A configuration that was one of them
    alone would be `off` again, so it is left out."""
    placed = []
    for config in configs:
        if config.name in off:
            continue
        modes = tuple((c, Mode.OFF if c in off else m) for c, m in config.modes)
        placed.append(replace(config, modes=modes))
    return placed
