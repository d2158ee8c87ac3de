"""The exposure window arithmetic."""

from __future__ import annotations

from simulator.replay.exposure import exposure_window

NOW = 1_000_000.0


def test_nothing_usable() -> None:
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=False,
        refresh_succeeded=None,
        refresh_claims=None,
        now=NOW,
    )
    assert (w.seconds, w.access_token_s, w.refresh_token_s) == (0.0, 0.0, 0.0)


def test_accepted_replay_counts_the_real_lifetime() -> None:
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=True,
        refresh_succeeded=None,
        refresh_claims=None,
        now=NOW,
    )
    assert w.seconds == 300.0 and w.access_token_s == 300.0


def test_refresh_after_the_end_adds_its_remaining_validity() -> None:
    claims = {"typ": "Refresh", "exp": NOW + 1800}
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=True,
        refresh_succeeded=True,
        refresh_claims=claims,
        now=NOW,
    )
    assert (w.seconds, w.access_token_s, w.refresh_token_s, w.offline) == (2100, 300, 1800, False)


def test_refresh_refused_adds_nothing() -> None:
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=False,
        refresh_succeeded=False,
        refresh_claims={"exp": NOW + 1800},
        now=NOW,
    )
    assert w.seconds == 0.0


def test_offline_token_with_expiry() -> None:
    claims = {"typ": "Offline", "exp": NOW + 30 * 86400}
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=False,
        refresh_succeeded=True,
        refresh_claims=claims,
        now=NOW,
    )
    assert w.offline and w.seconds == 30 * 86400 and "until revoked" in w.note


def test_offline_token_without_expiry_is_unbounded() -> None:
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=True,
        refresh_succeeded=True,
        refresh_claims={"typ": "Offline"},
        now=NOW,
    )
    assert w.seconds is None and w.offline and w.access_token_s == 300


def test_expired_refresh_token_never_negative() -> None:
    w = exposure_window(
        access_lifetime_s=None,
        replay_accepted=True,
        refresh_succeeded=True,
        refresh_claims={"exp": NOW - 5},
        now=NOW,
    )
    assert w.seconds == 0.0


def test_revoked_token_usable_until_the_introspection_cache_expired() -> None:
    w = exposure_window(
        access_lifetime_s=300,
        replay_accepted=False,
        refresh_succeeded=None,
        refresh_claims=None,
        now=NOW,
        cached_s=11.2,
    )
    assert w.seconds == 11.2 and w.access_token_s == 11.2 and "cache" in w.note
