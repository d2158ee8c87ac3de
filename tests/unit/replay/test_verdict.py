"""Verdicts per control: the configuration audit, the run's evidence, the comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy import load_policy
from labcore.profiles import load_profiles
from simulator.replay.engine import _facts
from simulator.replay.model import ScopeProbe, SessionEndResult, StepResult
from simulator.replay.verdict import (
    HELD,
    NA,
    VIOLATED,
    AuditEvidence,
    IssuedFacts,
    ProfileFacts,
    Thresholds,
    audit,
    caught,
    compare,
    judge,
)

REPO = Path(__file__).resolve().parents[3]
LAB = Thresholds.of(load_policy())  # the lab's policy: 900 s, operational-ai
ME = "pat-a-000000"
GOOD = ProfileFacts(
    "operational-ai",
    ("openid", "launch/patient", "patient/Patient.rs", "patient/Appointment.*"),
    300,
    False,
    ("tenant-a",),
)


def facts(client_id: str) -> ProfileFacts:
    return _facts(load_profiles(REPO / "keycloak" / "clients")[client_id])


def step(
    status: int,
    probes: tuple[str, ...] = (),
    control: str | None = None,
    patients: tuple[str, ...] = (),
    name: str = "s",
) -> StepResult:
    return StepResult(name, "GET", "u", status, control, len(patients), patients, probes=probes)


def verdicts(f: ProfileFacts = GOOD, steps: tuple[StepResult, ...] = (), **kw: object) -> dict:
    options: dict = {
        "thresholds": LAB,
        "trail": None,
        "scope_probe": None,
        "session_end": SessionEndResult(),
        "revoke_asked": True,
        "session_end_exercised": False,
        "my_patient": ME,
    }
    options.update(kw)
    return {c: v for c, (v, _) in judge(f, steps, **options).items()}


# ---- configuration audit ------------------------------------------------------------------
def test_good_profile_holds_the_configuration_controls() -> None:
    found = {c: v for c, (v, _) in audit(GOOD, LAB).items()}
    assert found == {c: HELD for c in ("C01", "C02", "C03", "C04", "C05", "C07", "C10")}


@pytest.mark.parametrize(
    ("client", "violated"),
    [
        ("scheduling-assistant", set()),
        ("intake-assistant", set()),
        ("population-analytics", set()),
        ("broad-clinical-assistant", {"C01", "C04", "C05", "C11"}),
        ("long-token-assistant", {"C02"}),
        ("offline-assistant", {"C03"}),
        ("wildcard-scheduler", {"C05"}),
        ("triage-chatbot", {"C07"}),
        ("shared-vendor", {"C10"}),
    ],
)
def test_audit_of_the_real_profiles(client: str, violated: set[str]) -> None:
    found = {c for c, (v, _) in audit(facts(client), LAB).items() if v == VIOLATED}
    assert found == violated


def test_c01_user_scopes_for_operational_ai() -> None:
    f = ProfileFacts("operational-ai", ("user/Patient.rs",), 300, False, ("tenant-a",))
    assert audit(f, LAB)["C01"][0] == VIOLATED


def test_system_scopes_fine_for_analytics_backend() -> None:
    f = ProfileFacts("analytics-backend", ("system/*.read",), 300, False, ("tenant-a",))
    found = audit(f, LAB)
    assert found["C01"][0] == found["C04"][0] == found["C05"][0] == HELD
    assert "C11" not in found


def test_c02_boundary() -> None:
    at = ProfileFacts("operational-ai", ("patient/Patient.rs",), 900, False, ("tenant-a",))
    over = ProfileFacts("operational-ai", ("patient/Patient.rs",), 901, False, ("tenant-a",))
    assert audit(at, LAB)["C02"][0] == HELD and audit(over, LAB)["C02"][0] == VIOLATED


def test_c07_public_clinical_app_is_not_a_violation() -> None:
    f = ProfileFacts("clinical-app", ("patient/Patient.rs",), 300, True, ("tenant-a",))
    assert audit(f, LAB)["C07"][0] == HELD


# ---- run evidence -------------------------------------------------------------------------
def test_unexercised_controls_are_na() -> None:
    found = verdicts()
    assert found["C06"] == found["C08"] == found["C09"] == found["C11"] == found["C12"] == NA


def trail(sent: int, recorded: int | None = None, *alerts: str, audited: bool = True):
    return AuditEvidence(audited, sent, sent if recorded is None else recorded, alerts)


def test_c06_holds_when_every_request_was_recorded_and_nothing_alerted() -> None:
    assert verdicts(steps=(step(200),), trail=trail(1))["C06"] == HELD


def test_c06_is_not_judged_without_evidence_of_the_trail() -> None:
    assert verdicts(steps=(step(200),))["C06"] == NA  # no trail read: nothing to judge by
    assert verdicts(trail=trail(0))["C06"] == NA  # no request sent


@pytest.mark.parametrize(
    ("evidence", "anomalous", "why"),
    [
        (trail(3, 0, audited=False), (), "no audit trail"),
        (trail(3, 2), (), "1 of 3 request(s) left no audit record"),
        (trail(3, 3, "volume", "off_hours"), ("burst",), "detected: alerts volume, off_hours"),
        (trail(3, 3, "wildcard_demographics"), (), "detected: alerts wildcard_demographics"),
        (trail(3), ("burst",), "sent (burst) and no alert raised"),
    ],
)
def test_c06_violated_as_the_trail_shows(
    evidence: AuditEvidence, anomalous: tuple[str, ...], why: str
) -> None:
    found = judge(
        GOOD,
        (step(200),),
        thresholds=LAB,
        trail=evidence,
        scope_probe=None,
        session_end=SessionEndResult(),
        revoke_asked=True,
        session_end_exercised=False,
        my_patient=ME,
        anomalous=anomalous,
    )
    assert found["C06"][0] == VIOLATED and why in found["C06"][1]


def test_thresholds_come_from_the_policy() -> None:
    policy = load_policy()
    stricter = policy.model_copy(
        update={
            "client_policy": policy.client_policy.model_copy(
                update={"max_token_lifetime_s": 300, "operational_classes": ("clinical-app",)}
            )
        }
    )
    rules = Thresholds.of(stricter)
    at_600 = ProfileFacts("operational-ai", ("patient/Patient.rs",), 600, False, ("tenant-a",))
    assert audit(at_600, LAB)["C02"][0] == HELD
    assert audit(at_600, rules)["C02"] == (VIOLATED, "access token lifetime 600 s > 300 s")
    public_app = ProfileFacts("clinical-app", ("patient/Patient.rs",), 60, True, ("tenant-a",))
    assert audit(public_app, LAB)["C07"][0] == HELD
    assert audit(public_app, rules)["C07"][0] == VIOLATED  # now an operational class


def test_probe_refused_by_its_control_holds() -> None:
    assert verdicts(steps=(step(403, ("C08",), "C08"),))["C08"] == HELD


def test_probe_refused_without_a_control_holds() -> None:
    assert verdicts(steps=(step(404, ("C10",)),))["C10"] == HELD


def test_probe_that_reached_another_patient_is_violated() -> None:
    found = verdicts(steps=(step(200, ("C08",), patients=(ME, "pat-a-000002")),))
    assert found["C08"] == VIOLATED


def test_narrowed_search_within_my_compartment_holds_c08() -> None:
    assert verdicts(steps=(step(200, ("C08",), patients=(ME,)),))["C08"] == HELD


def test_operation_probe_allowed_is_violated() -> None:
    assert verdicts(steps=(step(200, ("C12",)),))["C12"] == VIOLATED
    assert verdicts(steps=(step(202, ("C04",)),))["C04"] == VIOLATED


def test_probe_caught_by_a_violated_control_is_violated() -> None:
    broad = facts("broad-clinical-assistant")
    found = verdicts(broad, (step(403, ("C06", "C12"), "C01"),), my_patient=None)
    assert found["C06"] == found["C12"] == VIOLATED


def test_probe_refused_by_another_held_control_holds() -> None:
    assert verdicts(steps=(step(403, ("C12",), "C05"),))["C12"] == HELD


def test_config_violation_wins_over_a_refused_probe() -> None:
    wildcard = facts("wildcard-scheduler")
    assert verdicts(wildcard, (step(403, ("C05",), "C05"),))["C05"] == VIOLATED


def test_unprobed_step_reaching_other_patients_violates_c08() -> None:
    assert verdicts(steps=(step(200, patients=("pat-a-000009",)),))["C08"] == VIOLATED
    assert verdicts(steps=(step(200, patients=("pat-a-000009",)),), my_patient=None)["C08"] == NA


def test_unsent_probes_hold() -> None:
    assert verdicts(unsent_probes=("C01", "C08"))["C08"] == HELD


# ---- C09 and C11 --------------------------------------------------------------------------
def test_c09_replay_refused_holds() -> None:
    end = SessionEndResult(revoked=True, replay_attempted=True, replay_accepted=False)
    assert verdicts(session_end=end, session_end_exercised=True)["C09"] == HELD


def test_c09_evidence_names_the_control_that_refused_the_replay() -> None:
    end = SessionEndResult(
        revoked=True, replay_attempted=True, replay_accepted=False, replay_status=401,
        replay_control="C02",
    )  # fmt: skip
    options = {"scope_probe": None, "revoke_asked": True, "my_patient": ME, "trail": None}
    verdict, evidence = judge(
        GOOD, (), thresholds=LAB, session_end=end, session_end_exercised=True, **options
    )["C09"]
    assert verdict == HELD
    assert evidence == "post-session replay refused (HTTP 401 [C02])"


def test_c09_replay_accepted_is_violated() -> None:
    end = SessionEndResult(revoked=True, replay_attempted=True, replay_accepted=True)
    assert verdicts(session_end=end, session_end_exercised=True)["C09"] == VIOLATED


def test_c09_refresh_after_end_is_violated() -> None:
    end = SessionEndResult(refresh_attempted=True, refresh_succeeded=True)
    found = verdicts(session_end=end, session_end_exercised=True, revoke_asked=False)
    assert found["C09"] == VIOLATED


def test_c09_not_revoked_is_violated() -> None:
    end = SessionEndResult()
    found = verdicts(session_end=end, session_end_exercised=True, revoke_asked=False)
    assert found["C09"] == VIOLATED


@pytest.mark.parametrize(
    ("outcome", "verdict"), [("refused", HELD), ("down-scoped", HELD), ("granted", VIOLATED)]
)
def test_c11_probe_outcome(outcome: str, verdict: str) -> None:
    probe = ScopeProbe(outcome, ("system/*.read",), (), None)
    assert verdicts(scope_probe=probe)["C11"] == verdict


# ---- comparison and caught ----------------------------------------------------------------
def test_compare_lists_only_expected_controls() -> None:
    found = judge(
        GOOD,
        (step(403, ("C08",), "C08"),),
        thresholds=LAB,
        trail=None,
        scope_probe=None,
        session_end=SessionEndResult(),
        revoke_asked=True,
        session_end_exercised=False,
        my_patient=ME,
    )
    results = compare({"C08": "held", "C02": "violated", "C12": "n/a"}, found)
    assert [(r.control, r.ok) for r in results] == [("C02", False), ("C08", True), ("C12", True)]
    assert results[0].actual == HELD and results[0].evidence


def test_caught_controls() -> None:
    steps = (
        step(403, control="C08"),
        step(200),
        step(401, control="C10"),
        step(200, control="C05"),
    )
    assert caught(steps) == ["C08", "C10"]


def test_c09_cached_acceptance_then_refusal_holds() -> None:
    end = SessionEndResult(
        revoked=True,
        replay_attempted=True,
        replay_accepted=False,
        replay_accepted_at_once=True,
        replay_delay_s=11.0,
    )
    found = judge(
        GOOD,
        (),
        thresholds=LAB,
        trail=None,
        scope_probe=None,
        session_end=end,
        revoke_asked=True,
        session_end_exercised=True,
        my_patient=ME,
    )
    assert found["C09"][0] == HELD and "11.0 s" in found["C09"][1]


# -- what the authorization server issued (an issuance policy may grant less) ------------------


def test_a_wildcard_the_as_narrowed_holds_at_issuance_and_the_probes_decide_the_rest() -> None:
    asked = ("openid", "launch/patient", "patient/*.read")
    narrowed = IssuedFacts(asked, ("openid", "patient/Patient.rs"), 300, False)
    found = audit(facts("wildcard-scheduler"), LAB, narrowed)
    assert found["C05"][0] == HELD
    assert "the AS narrowed" in found["C05"][1]
    # nothing checks scopes at the gateway: the probe still got through, so C05 is violated
    through = verdicts(facts("wildcard-scheduler"), (step(200, ("C05",)),), issued=narrowed)
    assert through["C05"] == VIOLATED


def test_the_registration_decides_when_the_as_issued_what_it_allows() -> None:
    asked = ("openid", "launch/patient", "patient/*.read")
    as_registered = IssuedFacts(asked, asked, 300, False)
    assert audit(facts("wildcard-scheduler"), LAB, as_registered)["C05"][0] == VIOLATED


def test_the_as_gets_no_credit_for_what_the_run_did_not_ask_for() -> None:
    asked = ("openid", "launch/patient", "patient/Patient.rs")  # no offline_access asked
    issued = IssuedFacts(asked, asked, 300, False)
    assert audit(facts("offline-assistant"), LAB, issued)["C03"][0] == VIOLATED


def test_a_capped_lifetime_and_withheld_offline_access_hold() -> None:
    capped = IssuedFacts(("openid",), ("openid",), 900, False)
    assert audit(facts("long-token-assistant"), LAB, capped)["C02"][0] == HELD
    asked = ("openid", "offline_access", "patient/Patient.rs")
    withheld = IssuedFacts(asked, ("openid", "patient/Patient.rs"), 300, False)
    assert audit(facts("offline-assistant"), LAB, withheld)["C03"][0] == HELD
    kept = IssuedFacts(asked, asked, 300, True)
    assert audit(facts("offline-assistant"), LAB, kept)["C03"][0] == VIOLATED


def test_a_request_the_as_refused_for_its_scopes_holds_what_the_registration_broke() -> None:
    asked = ("system/*.read",)
    refused = IssuedFacts(asked, (), 0, False, refused=True)
    found = audit(facts("broad-clinical-assistant"), LAB, refused)
    for control in ("C01", "C04", "C05", "C11"):
        assert found[control][0] == HELD, (control, found[control])
    assert "the AS refused the token" in found["C01"][1]
    assert "refused the request for system/*.read" in found["C11"][1]
    granted = IssuedFacts(asked, asked, 300, False)  # as registered: all four broken
    found = audit(facts("broad-clinical-assistant"), LAB, granted)
    assert [found[c][0] for c in ("C01", "C04", "C05", "C11")] == [VIOLATED] * 4
