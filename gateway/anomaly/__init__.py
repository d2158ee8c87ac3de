"""Streaming anomaly detection over the audit stream (control C06 alerts).

Detectors are pure, bounded state machines (`observe(record) -> list[Alert]`): `volume`,
`patient_fanout`, `paging_walk`, `wildcard_demographics`, `out_of_profile`, `off_hours`.
`AnomalyEngine.from_config()` builds them from the policy; `AlertSink` writes alerts to a JSONL
file and into the audit chain; `observe_and_log()` ties a finished request to both.
"""

from gateway.anomaly.alert_sink import AlertSink, observe_and_log, read_alerts
from gateway.anomaly.base import Alert, Detector, Severity
from gateway.anomaly.config import ConfigError
from gateway.anomaly.demographics import (
    DemographicsConfig,
    WildcardDemographicsDetector,
    assess_patient_search,
)
from gateway.anomaly.engine import DETECTORS, AnomalyEngine
from gateway.anomaly.fanout import FanoutConfig, PatientFanoutDetector
from gateway.anomaly.hours import OffHoursConfig, OffHoursDetector
from gateway.anomaly.paging import PagingConfig, PagingWalkDetector
from gateway.anomaly.profile import OutOfProfileDetector, ProfileConfig, profiles_from_scopes
from gateway.anomaly.volume import VolumeConfig, VolumeDetector

__all__ = [
    "DETECTORS",
    "Alert",
    "AlertSink",
    "AnomalyEngine",
    "ConfigError",
    "DemographicsConfig",
    "Detector",
    "FanoutConfig",
    "OffHoursConfig",
    "OffHoursDetector",
    "OutOfProfileDetector",
    "PagingConfig",
    "PagingWalkDetector",
    "PatientFanoutDetector",
    "ProfileConfig",
    "Severity",
    "VolumeConfig",
    "VolumeDetector",
    "WildcardDemographicsDetector",
    "assess_patient_search",
    "observe_and_log",
    "profiles_from_scopes",
    "read_alerts",
]
