"""Which gateway a replay talks to: the lab's own, or an extra one (the controls-off baseline).

A target is the gateway's FHIR base, the policy it runs (for its introspection cache) and where it
writes its audit log and alerts (None: not readable from here, e.g. an external stack).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.controls import Mode
from gateway.policy import Policy, load_policy
from labcore.config import LabConfig


@dataclass(frozen=True)
class GatewayTarget:
    name: str
    base_url: str
    policy: Policy
    audit_dir: Path | None

    @property
    def introspection_ttl_s(self) -> float:
        """How long the gateway may accept a revoked token (its introspection cache, C09)."""
        if self.policy.mode("C09") is Mode.OFF:
            return 0.0
        return float(self.policy.token.introspection_ttl_s)

    @property
    def audited(self) -> bool:
        return self.audit_dir is not None and self.policy.mode("C06") is not Mode.OFF


def lab_target(cfg: LabConfig, controls: Mapping[str, str] | None = None) -> GatewayTarget:
    """The lab's own gateway; `controls` are the modes it reports (`/_gateway/health`), which
    `fhirlab up --controls` may have switched from the policy file's."""
    policy = load_policy(cfg.gateway_policy) if cfg.gateway_policy else load_policy()
    if controls:
        known = {c: Mode(m) for c, m in controls.items() if m in {x.value for x in Mode}}
        policy = policy.with_modes(known)
    audit = None if cfg.external else cfg.audit_dir
    return GatewayTarget("lab", cfg.gateway_base_url, policy, audit)


def extra_target(
    name: str, base_url: str, policy_file: Path, audit_dir: Path | None
) -> GatewayTarget:
    return GatewayTarget(name, base_url, load_policy(policy_file), audit_dir)
