package org.fhirlab.keycloak;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * One client's SMART issuance rules, as the lab works them out from its profile
 * ({@code labcore/issuance.py}), and the decisions they make on a token about to be issued.
 *
 * <p>The rules are a table, so the SMART scope grammar is not written a second time in Java:
 * <ul>
 *   <li>{@code scopes}: a registered scope, its replacement ({@code to}, empty: not granted) and
 *       the decisions that led there (control, mode, reason);</li>
 *   <li>{@code lifetime}: the access token's maximum lifetime (C02);</li>
 *   <li>{@code offline}: whether a refresh token for offline access is withheld (C03);</li>
 *   <li>{@code service_account}: whether a client-credentials request gets no token (C04);</li>
 *   <li>{@code down_scope}: whether scopes the request did not ask for are left out (C11).</li>
 * </ul>
 * Modes are {@code enforce} (applied), {@code monitor} (recorded only) and {@code off}.
 *
 * <p>Pure Java; no Keycloak session: unit-tested on its own.
 */
public final class IssuancePolicy {

    public static final String ENFORCE = "enforce";
    public static final String MONITOR = "monitor";
    public static final String OFF = "off";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One decision, for the event the mapper records. {@code action}: what enforce does. */
    public record Decision(String control, String mode, String scope, String action, String reason) {
        public boolean enforced() {
            return ENFORCE.equals(mode);
        }
    }

    /** What to issue: the granted scopes, and every decision on the way. */
    public record Outcome(List<String> scopes, List<Decision> decisions, boolean changed) { }

    /** The rules could not be read: the mapper refuses to issue (fail closed). */
    public static final class RulesException extends Exception {
        public RulesException(String message) {
            super(message);
        }
    }

    private record Fate(List<String> to, List<Decision> decisions) { }

    private final String clientId;
    private final Map<String, Fate> fates;
    private final String lifetimeMode;
    private final long maxLifetimeSeconds;
    private final String offlineMode;
    private final String serviceAccountMode;
    private final String downScopeMode;

    private IssuancePolicy(String clientId, Map<String, Fate> fates, String lifetimeMode,
                           long maxLifetimeSeconds, String offlineMode, String serviceAccountMode,
                           String downScopeMode) {
        this.clientId = clientId;
        this.fates = fates;
        this.lifetimeMode = lifetimeMode;
        this.maxLifetimeSeconds = maxLifetimeSeconds;
        this.offlineMode = offlineMode;
        this.serviceAccountMode = serviceAccountMode;
        this.downScopeMode = downScopeMode;
    }

    /** Parse the rules the lab wrote into the mapper's configuration. */
    public static IssuancePolicy parse(String json) throws RulesException {
        if (json == null || json.isBlank()) {
            throw new RulesException("no issuance rules configured");
        }
        try {
            JsonNode root = JSON.readTree(json);
            if (root == null || root.path("version").asInt() != 1) {
                throw new RulesException("issuance rules of an unknown version");
            }
            Map<String, Fate> fates = new java.util.HashMap<>();
            JsonNode scopes = root.path("scopes");
            for (var it = scopes.fields(); it.hasNext(); ) {
                var entry = it.next();
                List<String> to = new ArrayList<>();
                for (JsonNode s : entry.getValue().path("to")) {
                    to.add(s.asText());
                }
                List<Decision> decisions = new ArrayList<>();
                for (JsonNode d : entry.getValue().path("decisions")) {
                    String mode = mode(d.path("mode").asText());
                    String action = to.isEmpty() ? "removed" : "narrowed to " + String.join(" ", to);
                    decisions.add(new Decision(d.path("control").asText(), mode, entry.getKey(), action,
                            d.path("reason").asText()));
                }
                fates.put(entry.getKey(), new Fate(List.copyOf(to), List.copyOf(decisions)));
            }
            JsonNode lifetime = root.path("lifetime");
            return new IssuancePolicy(
                    root.path("client_id").asText(),
                    Collections.unmodifiableMap(fates),
                    mode(lifetime.path("mode").asText(OFF)),
                    lifetime.path("max_s").asLong(0),
                    mode(root.path("offline").asText(OFF)),
                    mode(root.path("service_account").asText(OFF)),
                    mode(root.path("down_scope").asText(OFF)));
        } catch (java.io.IOException e) {
            throw new RulesException("issuance rules are not JSON");
        }
    }

    private static String mode(String value) throws RulesException {
        if (ENFORCE.equals(value) || MONITOR.equals(value) || OFF.equals(value)) {
            return value;
        }
        throw new RulesException("unknown mode " + value);
    }

    public String clientId() {
        return clientId;
    }

    /**
     * The scopes to grant: each granted scope looked up in the table (enforced fates applied,
     * monitored ones recorded), then, with down-scoping, only what the request asked for.
     *
     * @param granted   the scopes Keycloak is about to grant (its {@code scope} claim, split)
     * @param requested the {@code scope} parameter of the request (null: not known)
     */
    public Outcome decide(List<String> granted, String requested) {
        Set<String> result = new LinkedHashSet<>();
        List<Decision> decisions = new ArrayList<>();
        Set<String> asked = requested == null ? null : Set.of(requested.trim().split("\\s+"));
        for (String scope : granted) {
            if (scope.isEmpty()) {
                continue;
            }
            if (asked != null && !"openid".equals(scope) && !asked.contains(scope) && !OFF.equals(downScopeMode)) {
                decisions.add(new Decision("C11", downScopeMode, scope, "removed",
                        "granted by default but not asked for"));
                if (ENFORCE.equals(downScopeMode)) {
                    continue;
                }
            }
            Fate fate = fates.get(scope);
            if (fate == null) {
                result.add(scope);
                continue;
            }
            decisions.addAll(fate.decisions());
            result.addAll(fate.to());
        }
        List<String> scopes = List.copyOf(result);
        return new Outcome(scopes, List.copyOf(decisions), !scopes.equals(dedupe(granted)));
    }

    private static List<String> dedupe(List<String> scopes) {
        Set<String> seen = new LinkedHashSet<>();
        for (String s : scopes) {
            if (!s.isEmpty()) {
                seen.add(s);
            }
        }
        return List.copyOf(seen);
    }

    /**
     * The access token's expiry under C02: {@code exp} itself, or {@code iat + max} when that is
     * sooner and the cap is enforced. Returns {@code exp} unchanged when off or monitored.
     */
    public long cappedExpiry(long iat, long exp) {
        if (!ENFORCE.equals(lifetimeMode) || maxLifetimeSeconds <= 0 || exp <= 0) {
            return exp;
        }
        return Math.min(exp, iat + maxLifetimeSeconds);
    }

    /** A decision on the lifetime, or null when the token is within the cap (or C02 is off). */
    public Decision lifetimeDecision(long iat, long exp) {
        if (OFF.equals(lifetimeMode) || maxLifetimeSeconds <= 0 || exp <= 0 || exp - iat <= maxLifetimeSeconds) {
            return null;
        }
        return new Decision("C02", lifetimeMode, null, "lifetime capped at " + maxLifetimeSeconds + " s",
                "requested lifetime " + (exp - iat) + " s exceeds " + maxLifetimeSeconds + " s");
    }

    /** A decision on an offline refresh token (C03), or null when C03 is off. */
    public Decision offlineDecision() {
        if (OFF.equals(offlineMode)) {
            return null;
        }
        return new Decision("C03", offlineMode, "offline_access", "refresh token withheld",
                "offline access is not issued to this client");
    }

    /** A decision on a client-credentials request (C04), or null when C04 is off. */
    public Decision serviceAccountDecision() {
        if (OFF.equals(serviceAccountMode)) {
            return null;
        }
        return new Decision("C04", serviceAccountMode, null, "no token issued",
                "client-credentials (system, bulk export) tokens are not issued to this client");
    }
}
