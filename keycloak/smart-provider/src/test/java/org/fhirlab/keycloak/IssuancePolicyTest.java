package org.fhirlab.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

class IssuancePolicyTest {

    private static final String RULES = """
            {"version": 1, "client_id": "wildcard-scheduler",
             "scopes": {
               "patient/*.read": {"to": ["patient/Appointment.rs", "patient/Patient.rs"],
                                  "decisions": [{"control": "C05", "mode": "enforce", "reason": "wildcard"}]},
               "user/*.read": {"to": [], "decisions": [{"control": "C01", "mode": "enforce", "reason": "user"}]},
               "offline_access": {"to": ["offline_access"],
                                  "decisions": [{"control": "C03", "mode": "monitor", "reason": "offline"}]}},
             "lifetime": {"mode": "enforce", "max_s": 900},
             "offline": "monitor", "service_account": "enforce", "down_scope": "enforce"}
            """;

    @Test
    void narrowsRemovesAndRecordsEachDecision() throws Exception {
        IssuancePolicy policy = IssuancePolicy.parse(RULES);
        var outcome = policy.decide(List.of("openid", "patient/*.read", "user/*.read", "launch/patient"),
                "openid patient/*.read user/*.read launch/patient");
        assertEquals(List.of("openid", "patient/Appointment.rs", "patient/Patient.rs", "launch/patient"),
                outcome.scopes());
        assertTrue(outcome.changed());
        assertEquals(List.of("C05", "C01"), outcome.decisions().stream().map(IssuancePolicy.Decision::control).toList());
    }

    @Test
    void downScopingLeavesOutDefaultsNotAskedFor() throws Exception {
        IssuancePolicy policy = IssuancePolicy.parse(RULES);
        var outcome = policy.decide(List.of("openid", "patient/Patient.rs", "patient/Condition.rs"),
                "openid patient/Patient.rs");
        assertEquals(List.of("openid", "patient/Patient.rs"), outcome.scopes());
        assertEquals("C11", outcome.decisions().get(0).control());
    }

    @Test
    void monitoredScopesStayAndUnchangedTokensAreNotChanged() throws Exception {
        IssuancePolicy policy = IssuancePolicy.parse(RULES);
        var outcome = policy.decide(List.of("openid", "offline_access"), "openid offline_access");
        assertEquals(List.of("openid", "offline_access"), outcome.scopes());
        assertFalse(outcome.changed());
        assertEquals("monitor", outcome.decisions().get(0).mode());
    }

    @Test
    void lifetimeIsCappedOnlyWhenEnforcedAndLonger() throws Exception {
        IssuancePolicy policy = IssuancePolicy.parse(RULES);
        assertEquals(1_000 + 900, policy.cappedExpiry(1_000, 1_000 + 28_800));
        assertEquals(1_000 + 300, policy.cappedExpiry(1_000, 1_000 + 300));
        assertNull(policy.lifetimeDecision(1_000, 1_000 + 300));
        assertEquals("C02", policy.lifetimeDecision(1_000, 1_000 + 28_800).control());
    }

    @Test
    void serviceAccountAndOfflineDecisionsFollowTheirModes() throws Exception {
        IssuancePolicy policy = IssuancePolicy.parse(RULES);
        assertTrue(policy.serviceAccountDecision().enforced());
        assertFalse(policy.offlineDecision().enforced());
    }

    @Test
    void unreadableRulesAreRefused() {
        assertThrows(IssuancePolicy.RulesException.class, () -> IssuancePolicy.parse(null));
        assertThrows(IssuancePolicy.RulesException.class, () -> IssuancePolicy.parse("not json"));
        assertThrows(IssuancePolicy.RulesException.class, () -> IssuancePolicy.parse("{\"version\": 2}"));
        assertThrows(IssuancePolicy.RulesException.class,
                () -> IssuancePolicy.parse("{\"version\": 1, \"down_scope\": \"sometimes\"}"));
    }
}
