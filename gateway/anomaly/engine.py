"""`AnomalyEngine`: every detector over the audit stream, built once from the policy.

The policy's `anomaly` section is a mapping of detector name to its settings (all optional;
`enabled: false` switches one off; a detector not named runs with its defaults)::

    anomaly:
      volume:                {window_s: 60, max_requests: 600}
      patient_fanout:        {window_s: 3600, max_patients_per_token: 25}
      paging_walk:           {max_pages: 20, max_results: 5000}
      wildcard_demographics: {min_value_length: 3, max_plain: 10}
      out_of_profile:        {profiles: {scheduler: [Patient, Appointment, Schedule]}}
      off_hours:             {timezone: America/New_York, weekdays: [mon, tue, wed, thu, fri],
                              start: "07:00", end: "19:00", max_requests: 10}

Shorter spellings are accepted too (`ALIASES`): `threshold` for each detector's main limit, and
for `off_hours` `start_hour`/`end_hour` (whole hours) and `weekdays_only` (Mon-Fri or all days).
Errors name the key as it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from gateway.anomaly.base import Alert, Detector
from gateway.anomaly.config import ConfigError, load
from gateway.anomaly.demographics import DemographicsConfig, WildcardDemographicsDetector
from gateway.anomaly.fanout import FanoutConfig, PatientFanoutDetector
from gateway.anomaly.hours import OffHoursConfig, OffHoursDetector
from gateway.anomaly.paging import PagingConfig, PagingWalkDetector
from gateway.anomaly.profile import OutOfProfileDetector, ProfileConfig
from gateway.anomaly.volume import VolumeConfig, VolumeDetector
from gateway.audit.record import AuditRecord

__all__ = ["ALIASES", "DETECTORS", "AnomalyEngine"]

# name -> (config class, detector factory), in the order the engine runs them
DETECTORS: Final[dict[str, tuple[type[Any], Callable[[Any], Detector]]]] = {
    "volume": (VolumeConfig, VolumeDetector),
    "patient_fanout": (FanoutConfig, PatientFanoutDetector),
    "paging_walk": (PagingConfig, PagingWalkDetector),
    "wildcard_demographics": (DemographicsConfig, WildcardDemographicsDetector),
    "out_of_profile": (ProfileConfig, OutOfProfileDetector),
    "off_hours": (OffHoursConfig, OffHoursDetector),
}


_WORKDAYS: Final = ("mon", "tue", "wed", "thu", "fri")
_ALL_DAYS: Final = (*_WORKDAYS, "sat", "sun")


def _hour(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 24:
        raise ConfigError(key, f"must be a whole hour 0-24, got {value!r}")
    return f"{value:02d}:00"


def _weekdays_only(value: Any, key: str) -> list[str]:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return list(_WORKDAYS if value else _ALL_DAYS)


_Convert = Callable[[Any, str], Any] | None
# detector -> accepted alias -> (setting it stands for, conversion)
ALIASES: Final[dict[str, dict[str, tuple[str, _Convert]]]] = {
    "volume": {"threshold": ("max_requests", None)},
    "patient_fanout": {"threshold": ("max_patients_per_token", None)},
    "paging_walk": {"threshold": ("max_pages", None)},
    "wildcard_demographics": {"threshold": ("max_plain", None)},
    "off_hours": {
        "threshold": ("max_requests", None),
        "start_hour": ("start", _hour),
        "end_hour": ("end", _hour),
        "weekdays_only": ("weekdays", _weekdays_only),
    },
}


def _unalias(name: str, section: Any, path: str) -> tuple[Any, dict[str, str]]:
    """The section with aliases replaced by their settings, and setting -> alias written."""
    aliases = ALIASES.get(name, {})
    if not isinstance(section, Mapping) or not aliases.keys() & section.keys():
        return section, {}
    resolved: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in section.items():
        if key not in aliases:
            resolved[key] = value
            continue
        target, convert = aliases[key]
        if target in section or target in written:
            raise ConfigError(f"{path}.{key}", f"means {target}, which is also given; keep one")
        resolved[target] = convert(value, f"{path}.{key}") if convert else value
        written[target] = key
    return resolved, written


class AnomalyEngine:
    """Runs detectors in order over each record and returns all their alerts."""

    def __init__(self, detectors: Iterable[Detector]) -> None:
        self._detectors = tuple(detectors)
        names = [detector.name for detector in self._detectors]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique; repeated: {', '.join(duplicates)}")

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return self._detectors

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(detector.name for detector in self._detectors)

    def observe(self, record: AuditRecord) -> list[Alert]:
        alerts: list[Alert] = []
        for detector in self._detectors:
            found = detector.observe(record)
            if found:
                alerts.extend(found)
        return alerts

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None = None,
        *,
        profiles: Mapping[str, Collection[str]] | None = None,
        population_clients: Collection[str] = (),
        where: str = "anomaly",
    ) -> AnomalyEngine:
        """The default detector set, tuned by `config` (see the module docstring).

        `profiles` (client id -> resource types, e.g. from `profiles_from_scopes`) is merged
        over `out_of_profile.profiles`; `population_clients` (approved to read a population,
        e.g. the bulk-export allowlist) are not counted by `patient_fanout`. Raises
        `ConfigError` naming the bad key, under `where`.
        """
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise ConfigError(where, f"must be a mapping of detector settings, got {config!r}")
        for name in config:
            if name not in DETECTORS:
                known = ", ".join(DETECTORS)
                raise ConfigError(f"{where}.{name}", f"unknown detector; known: {known}")
        detectors = []
        for name, (config_class, factory) in DETECTORS.items():
            section = config.get(name)
            path = f"{where}.{name}"
            enabled = section.get("enabled", True) if isinstance(section, Mapping) else True
            if not isinstance(enabled, bool):
                raise ConfigError(f"{path}.enabled", f"must be true or false, got {enabled!r}")
            if not enabled:
                continue
            section, written = _unalias(name, section, path)
            try:
                settings = load(config_class, section, path, ignore=frozenset({"enabled"}))
            except ConfigError as exc:
                setting = exc.key.removeprefix(path + ".")
                if setting in written:
                    raise ConfigError(f"{path}.{written[setting]}", exc.message) from None
                raise
            if name == "out_of_profile" and profiles:
                merged = {**settings.profiles, **{k: frozenset(v) for k, v in profiles.items()}}
                settings = replace(settings, profiles=merged)
            if name == "patient_fanout" and population_clients:
                settings = replace(settings, population_clients=frozenset(population_clients))
            detectors.append(factory(settings))
        return cls(detectors)
