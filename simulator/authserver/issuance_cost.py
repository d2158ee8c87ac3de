"""What enforcing at the authorization server costs: the time Keycloak takes to issue a token with
the lab's issuance policy (the provider's mapper) against the same client as registered.

The gateway's controls cost time on every request (the load matrix measures that); the issuance
policy costs time once per token. This measures it at the token endpoint, with the refresh grant
of `scheduling-assistant` (one POST per token, no login page in the way):

- three configurations of the one client: `registered` (no mapper), `registered-2` (the same,
  provisioned again: the A/A pair whose difference is the noise floor) and `policy` (every
  issuance rule enforced, the lifetime cap set below the client's 300 s so that a rule changes
  every token and records its Keycloak event, as it does for a misconfigured client);
- rounds in which each configuration runs once, in an order shuffled with a recorded seed (each
  configuration in each position about equally often); each block discards its first tokens
  (Keycloak's caches after the client changed) and times the rest;
- `simulator/load/cost.py` reads the added median and p99 per token with 95% bootstrap
  intervals (rounds, then tokens, drawn with replacement), against the A/A floor.

The client is put back as its profile ships afterwards, whatever happens.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from labcore.config import LabConfig
from labcore.controls import Mode
from labcore.issuance import ISSUANCE_CONTROLS, IssuancePolicy
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import ClientProfile
from seed.users import DEMO_PASSWORD
from simulator.authserver.apply import jwks_for, select_profiles
from simulator.authserver.clients import apply_profile
from simulator.load.cost import Slice, cost, reading
from simulator.smart.auth import ClientSecret
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer

CLIENT: Final = "scheduling-assistant"
TENANT: Final = "tenant-a"
USER: Final = "pat-a-000000"  # the first seeded patient of tenant-a, who logs in as themselves
SCOPE: Final = "openid launch/patient patient/Patient.rs"
REDIRECT_URI: Final = "http://localhost:9999/callback"
CAPPED_LIFETIME_S: Final = 240  # below the client's 300 s: the lifetime rule changes every token
KIND: Final = "token"

REGISTERED, AA, POLICY = "registered", "registered-2", "policy"
CONFIGURATIONS: Final = (REGISTERED, AA, POLICY)


@dataclass
class IssuanceCost:
    """The measured tokens and what they say."""

    rounds: int
    per_block: int
    warmup: int
    order_seed: int
    order: list[list[str]] = field(default_factory=list)
    times_ms: dict[str, list[list[float]]] = field(default_factory=dict)  # config -> rounds
    seconds: dict[str, list[float]] = field(default_factory=dict)
    expires_in: dict[str, list[int]] = field(default_factory=dict)  # config -> seen values

    def slices(self, name: str) -> list[Slice]:
        return [
            Slice({KIND: times}, secs)
            for times, secs in zip(self.times_ms[name], self.seconds[name], strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        added = cost(self.slices(POLICY), self.slices(REGISTERED), KIND)
        floor = cost(self.slices(AA), self.slices(REGISTERED), KIND)
        medians = {
            name: round(statistics.median(t for r in rounds for t in r), 3)
            for name, rounds in self.times_ms.items()
            if any(rounds)
        }
        return {
            "client": CLIENT,
            "grant": "refresh_token",
            "rounds": self.rounds,
            "per_block": self.per_block,
            "warmup": self.warmup,
            "order_seed": self.order_seed,
            "order": self.order,
            "capped_lifetime_s": CAPPED_LIFETIME_S,
            # the longest seen: Keycloak rounds a second down when the token crosses one
            "expires_in": {k: max(v, default=None) for k, v in self.expires_in.items()},
            "median_ms": medians,
            "added": added.to_dict() if added else None,
            "noise_floor": floor.to_dict() if floor else None,
            "reading": (
                reading(added.added_p50_ms, floor.added_p50_ms if floor else None)
                if added
                else "not enough tokens for an estimate"
            ),
        }


def _measured_policy() -> IssuancePolicy:
    return IssuancePolicy(
        **{c: Mode.ENFORCE for c in ISSUANCE_CONTROLS}, max_token_lifetime_s=CAPPED_LIFETIME_S
    )


def measure_issuance_cost(
    cfg: LabConfig,
    *,
    rounds: int = 8,
    per_block: int = 25,
    warmup: int = 3,
    seed: int | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> IssuanceCost:
    """Time `per_block` refreshes per configuration per round (after `warmup` untimed ones)."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    rng = random.Random(seed)
    result = IssuanceCost(rounds, per_block, warmup, seed)
    for name in CONFIGURATIONS:
        result.times_ms[name], result.seconds[name], result.expires_in[name] = [], [], []
    (shipped,) = select_profiles(cfg, [CLIENT])
    variants: dict[str, ClientProfile] = {
        REGISTERED: shipped.model_copy(update={"issuance": None}),
        AA: shipped.model_copy(update={"issuance": None}),
        POLICY: shipped.model_copy(update={"issuance": _measured_policy()}),
    }
    jwks = jwks_for(cfg, shipped, TENANT)
    server = discover_issuer(cfg.issuer(TENANT))
    auth = ClientSecret(CLIENT, shipped.secret or "")
    with (
        KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin,
        SmartClient(server, auth, REDIRECT_URI) as client,
    ):
        try:
            apply_profile(admin, variants[REGISTERED], TENANT, jwks)
            refresh = client.authorization_code(USER, DEMO_PASSWORD, SCOPE).refresh_token
            for r in range(rounds):
                order = list(CONFIGURATIONS)
                rng.shuffle(order)
                result.order.append(order)
                for name in order:
                    apply_profile(admin, variants[name], TENANT, jwks)
                    for _ in range(warmup):
                        refresh = client.refresh(refresh).refresh_token or refresh
                    times: list[float] = []
                    start = time.perf_counter()
                    for _ in range(per_block):
                        t0 = time.perf_counter()
                        token = client.refresh(refresh)
                        times.append((time.perf_counter() - t0) * 1000)
                        refresh = token.refresh_token or refresh
                        if token.expires_in is not None:
                            result.expires_in[name].append(token.expires_in)
                    result.times_ms[name].append(times)
                    result.seconds[name].append(time.perf_counter() - start)
                say(f"issuance cost: round {r + 1}/{rounds}")
        finally:
            apply_profile(admin, shipped, TENANT, jwks)
    return result
