"""Checks that need several fields or the client profiles; each problem names its own field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from labcore.profiles import ClientProfile
from simulator.scenarios.model import USER_LAUNCHES, Scenario
from simulator.scenarios.problems import Lines, Problem, problem
from simulator.scenarios.vocabulary import Launch, Verdict

_GRANT_FOR_LAUNCH = {
    Launch.STANDALONE: "authorization_code",
    Launch.EHR: "authorization_code",
    Launch.BACKEND: "client_credentials",
}


def check_scenario(
    file: Path, scenario: Scenario, lines: Lines, profiles: Mapping[str, ClientProfile]
) -> list[Problem]:
    found = [problem(file, loc, msg, lines) for loc, msg in _own(scenario)]
    profile = profiles.get(scenario.client)
    if profile is None:
        known = ", ".join(sorted(profiles)) or "(none)"
        found.append(
            problem(
                file,
                ("client",),
                f"no client profile {scenario.client!r} in keycloak/clients/; known: {known}",
                lines,
            )
        )
        return found
    found.extend(problem(file, loc, msg, lines) for loc, msg in _against(scenario, profile))
    return found


Found = list[tuple[tuple[str | int, ...], str]]


def _own(s: Scenario) -> Found:
    found: Found = []
    if s.launch in USER_LAUNCHES and s.user is None:
        found.append((("launch",), f"launch {s.launch} needs user: my-patient or practitioner"))
    if s.launch not in USER_LAUNCHES and s.user is not None:
        found.append((("user",), f"launch {s.launch} has no user who logs in; remove user"))
    if s.launch is Launch.NONE and s.scope:
        found.append((("scope",), "launch none asks for no token; remove scope"))
    if s.launch is not Launch.NONE and not s.scope:
        found.append((("launch",), f"launch {s.launch} needs scope: what the client asks for"))
    if s.scope_probe and s.verdict("C11") is Verdict.NA:
        found.append((("scope_probe",), "a scope probe tests C11: expect C11 held or violated"))
    seen: set[str] = set()
    for i, step in enumerate(s.steps):
        for control in step.probes:
            if s.verdict(control) is Verdict.NA:
                message = f"step probes {control}: expect {control} held or violated"
                found.append((("steps", i, "probes"), message))
        if step.name in seen:
            found.append((("steps", i, "name"), f"step name {step.name!r} is used twice"))
        seen.add(step.name)
    return found


def _against(s: Scenario, profile: ClientProfile) -> Found:
    found: Found = []
    if s.tenant is not None and s.tenant not in profile.tenants:
        found.append(
            (
                ("tenant",),
                f"client {profile.client_id} is not registered in "
                f"{s.tenant}; allowed: {', '.join(profile.tenants)}",
            )
        )
    grant = _GRANT_FOR_LAUNCH.get(s.launch)
    if grant and grant not in profile.grant_types:
        found.append(
            (
                ("launch",),
                f"launch {s.launch} needs grant {grant}; client "
                f"{profile.client_id} has {', '.join(profile.grant_types)}",
            )
        )
    extra = [scope for scope in s.scopes if scope not in profile.scopes]
    if extra and not s.scope_probe:
        found.append(
            (
                ("scope",),
                f"not registered for {profile.client_id}: {' '.join(extra)} "
                f"(registered: {' '.join(profile.scopes)}); to probe the authorization "
                "server with an over-broad request, set scope_probe: true",
            )
        )
    if s.scope_probe and not extra:
        found.append(
            (
                ("scope_probe",),
                "every scope asked is registered: nothing to probe; "
                "ask for at least one scope the client does not have",
            )
        )
    if s.session_end.keep_refresh_token and not profile.refresh_tokens:
        found.append(
            (
                ("session_end", "keep_refresh_token"),
                f"client {profile.client_id} gets no refresh token to keep",
            )
        )
    for i, step in enumerate(s.steps):
        for field, message in step.profile_problems(profile, s.launch):
            found.append((("steps", i, field), message))
    return found
