"""AnomalyEngine: built from policy data, fans each record out to every detector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.anomaly import (
    DETECTORS,
    AnomalyEngine,
    ConfigError,
    OffHoursDetector,
    OutOfProfileDetector,
    VolumeDetector,
)
from gateway.audit import AuditRecord
from gateway.policy import load_policy
from tests.unit.gateway.anomaly.helpers import SATURDAY_NIGHT, rec, search


def test_the_default_set_runs_every_detector() -> None:
    engine = AnomalyEngine.from_config({})
    assert (
        engine.names
        == tuple(DETECTORS)
        == (
            "volume",
            "patient_fanout",
            "paging_walk",
            "wildcard_demographics",
            "out_of_profile",
            "off_hours",
        )
    )
    assert AnomalyEngine.from_config(None).names == engine.names


def test_settings_are_applied_and_detectors_can_be_switched_off() -> None:
    engine = AnomalyEngine.from_config(
        {
            "volume": {"window_s": 10, "max_requests": 3},
            "off_hours": {"weekdays": ["Mon", "tuesday", 2], "start": "08:30", "timezone": "UTC"},
            "paging_walk": {"enabled": False},
            "out_of_profile": {"profiles": {"scheduler": ["Appointment"]}},
        },
        profiles={"reader": {"Observation"}},
    )
    assert "paging_walk" not in engine.names
    by_name = {d.name: d for d in engine.detectors}
    volume = by_name["volume"]
    assert isinstance(volume, VolumeDetector)
    assert (volume.config.window_s, volume.config.max_requests) == (10.0, 3)
    hours = by_name["off_hours"]
    assert isinstance(hours, OffHoursDetector)
    assert (hours.config.weekdays, hours.config.start) == ((0, 1, 2), "08:30")
    profile = by_name["out_of_profile"]
    assert isinstance(profile, OutOfProfileDetector)
    assert dict(profile.config.profiles) == {
        "scheduler": frozenset({"Appointment"}),
        "reader": frozenset({"Observation"}),
    }


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"volum": {}}, "anomaly.volum", "unknown detector"),
        ({"volume": {"windw_s": 5}}, "anomaly.volume.windw_s", "unknown setting"),
        ({"volume": {"window_s": "fast"}}, "anomaly.volume.window_s", "must be a number"),
        ({"volume": {"window_s": -1}}, "anomaly.volume.window_s", "must be > 0"),
        ({"volume": {"max_requests": 1.5}}, "anomaly.volume.max_requests", "an integer"),
        ({"volume": {"max_requests": True}}, "anomaly.volume.max_requests", "an integer"),
        ({"volume": {"enabled": "no"}}, "anomaly.volume.enabled", "true or false"),
        ({"volume": [1]}, "anomaly.volume", "must be a mapping"),
        ({"off_hours": {"timezone": "Mars/Olympus"}}, "anomaly.off_hours.timezone", "unknown"),
        ({"off_hours": {"start": "7am"}}, "anomaly.off_hours.start", "HH:MM"),
        ({"off_hours": {"end": "07:00"}}, "anomaly.off_hours.end", "differ"),
        ({"off_hours": {"weekdays": ["funday"]}}, "anomaly.off_hours.weekdays", "not a day"),
        ({"off_hours": {"weekdays": "mon"}}, "anomaly.off_hours.weekdays", "list of days"),
        (
            {"out_of_profile": {"unknown_clients": "panic"}},
            "anomaly.out_of_profile.unknown_clients",
            "one of",
        ),
        (
            {"out_of_profile": {"profiles": {"c": "Patient"}}},
            "anomaly.out_of_profile.profiles.c",
            "list of resource types",
        ),
        ({"patient_fanout": {"max_patients_per_token": 0}}, "anomaly.patient_fanout.", ">= 1"),
    ],
)
def test_config_errors_name_the_bad_key(config: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AnomalyEngine.from_config(config)
    assert caught.value.key.startswith(key)
    assert message in caught.value.message
    assert str(caught.value).startswith(caught.value.key + ": ")


def test_short_spellings_of_a_policy_file_are_accepted() -> None:
    engine = AnomalyEngine.from_config(
        {
            "volume": {"window_s": 60, "threshold": 600},
            "patient_fanout": {"threshold": 25},
            "paging_walk": {"max_pages": 10},
            "off_hours": {
                "timezone": "America/New_York",
                "start_hour": 7,
                "end_hour": 19,
                "weekdays_only": True,
            },
        }
    )
    by_name = {d.name: d for d in engine.detectors}
    assert by_name["volume"].config.max_requests == 600  # type: ignore[attr-defined]
    assert by_name["patient_fanout"].config.max_patients_per_token == 25  # type: ignore[attr-defined]
    hours = by_name["off_hours"].config  # type: ignore[attr-defined]
    assert (hours.start, hours.end, hours.weekdays) == ("07:00", "19:00", (0, 1, 2, 3, 4))


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"volume": {"threshold": -1}}, "anomaly.volume.threshold", ">= 1"),
        ({"volume": {"threshold": 5, "max_requests": 5}}, "anomaly.volume.threshold", "keep one"),
        ({"off_hours": {"start_hour": 25}}, "anomaly.off_hours.start_hour", "whole hour"),
        ({"off_hours": {"weekdays_only": "yes"}}, "anomaly.off_hours.weekdays_only", "true or"),
    ],
)
def test_errors_in_short_spellings_name_the_key_written(
    section: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        AnomalyEngine.from_config(section)
    assert (caught.value.key, message in caught.value.message) == (key, True)


def test_the_error_path_follows_where_the_section_lives() -> None:
    with pytest.raises(ConfigError, match=r"^policy\.detectors\.volume\.window_s: "):
        AnomalyEngine.from_config({"volume": {"window_s": 0}}, where="policy.detectors")


def test_duplicate_detector_names_are_refused() -> None:
    with pytest.raises(ValueError, match="volume"):
        AnomalyEngine([VolumeDetector(), VolumeDetector()])


def test_one_record_can_raise_alerts_from_several_detectors() -> None:
    engine = AnomalyEngine.from_config(
        {"off_hours": {"max_requests": 0}},
        profiles={"scheduler": {"Appointment"}},
    )
    alerts = engine.observe(
        search(0, "Patient", "name=Sm*", ts=SATURDAY_NIGHT, patient_context=None)
    )
    assert sorted(a.detector for a in alerts) == [
        "off_hours",
        "out_of_profile",
        "wildcard_demographics",
    ]
    assert not engine.observe(rec(1))  # an ordinary read at noon


_text = st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    client=st.one_of(st.none(), _text),
    token=st.one_of(st.none(), _text),
    resource_type=st.one_of(st.none(), _text),
    interaction=st.sampled_from(["read", "search-type", "search-system", "operation", "", "x"]),
    query=st.text(max_size=200),
    patients=st.lists(_text, max_size=5),
    ts=st.floats(min_value=0, max_value=4e9),
    status=st.integers(min_value=0, max_value=599),
)
def test_the_engine_never_raises_on_client_controlled_fields(
    client: str | None,
    token: str | None,
    resource_type: str | None,
    interaction: str,
    query: str,
    patients: list[str],
    ts: float,
    status: int,
) -> None:
    engine = AnomalyEngine.from_config({"volume": {"max_requests": 1}})
    for i in range(3):
        record = AuditRecord(
            ts=ts + i,
            request_id=f"r{i}",
            method="GET",
            path="/fhir/" + (resource_type or ""),
            query=query,
            client_id=client,
            token_id=token,
            interaction=interaction,
            resource_type=resource_type,
            patients=tuple(patients),
            decision="allow",
            status=status,
        )
        for alert in engine.observe(record):
            assert alert.severity in ("low", "medium", "high")
            alert.to_json()


def test_the_shipped_policy_builds_an_engine() -> None:
    policy_file = Path(__file__).parents[4] / "gateway" / "policy.yaml"
    if not policy_file.exists():
        pytest.skip("no gateway/policy.yaml")
    # the anomaly section less `clock_header` (the lab's simulated clock, not a detector)
    engine = AnomalyEngine.from_config(load_policy(policy_file).detectors)
    assert "volume" in engine.names
