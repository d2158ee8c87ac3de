package org.fhirlab.keycloak;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.keycloak.jose.jws.Algorithm;
import org.keycloak.jose.jws.JWSInput;
import org.keycloak.jose.jws.JWSInputException;
import org.keycloak.jose.jws.crypto.HMACProvider;

/**
 * Verifies the SMART EHR-launch handle ({@code launch} authorize parameter).
 *
 * <p>The handle is a compact JWS, HS256 only, signed with a secret shared between the (simulated) EHR
 * and Keycloak. Claims:
 * <ul>
 *   <li>{@code patient} (required) - FHIR Patient id,</li>
 *   <li>{@code encounter} (optional) - FHIR Encounter id,</li>
 *   <li>{@code exp} (required) - NumericDate, must not be in the past (with {@link #CLOCK_SKEW_SECONDS} skew),</li>
 *   <li>{@code nbf} (optional) - must not be in the future (same skew),</li>
 *   <li>{@code aud} (required) - the client_id of the authorization request (a string, or an array holding
 *       exactly that one value),</li>
 *   <li>{@code iss} (optional) - checked only when an expected issuer is configured,</li>
 *   <li>{@code jti} (optional) - returned so the caller can enforce single use.</li>
 * </ul>
 *
 * <p>Pure Java on top of Keycloak's JOSE classes (keycloak-core); no Keycloak session needed, so it is
 * unit-testable. Every failure is a {@link LaunchTokenException} whose message is safe to show to the client.
 */
public final class LaunchTokenVerifier {

    /** Allowed clock skew for exp / nbf, in seconds. */
    public static final long CLOCK_SKEW_SECONDS = 30;

    /** HS256 keys shorter than the hash output are weak; refuse them (RFC 7518 section 3.2). */
    public static final int MIN_SECRET_BYTES = 32;

    /** FHIR id datatype: [A-Za-z0-9\-\.]{1,64}. Anything else never reaches a token. */
    private static final Pattern FHIR_ID = Pattern.compile("[A-Za-z0-9\\-.]{1,64}");

    private final byte[] secret;
    private final String expectedIssuer; // null = do not check iss

    public LaunchTokenVerifier(String secret, String expectedIssuer) {
        if (secret == null || secret.getBytes(StandardCharsets.UTF_8).length < MIN_SECRET_BYTES) {
            throw new IllegalArgumentException("launch secret must be at least " + MIN_SECRET_BYTES + " bytes");
        }
        this.secret = secret.getBytes(StandardCharsets.UTF_8);
        this.expectedIssuer = (expectedIssuer == null || expectedIssuer.isBlank()) ? null : expectedIssuer;
    }

    /** The launch context carried by a valid handle. */
    public record LaunchContext(String patient, String encounter, String jti, long exp) { }

    /** Why a handle was rejected; the message goes into error_description. */
    public static final class LaunchTokenException extends Exception {
        public LaunchTokenException(String message) {
            super(message);
        }
    }

    public static boolean isFhirId(String value) {
        return value != null && FHIR_ID.matcher(value).matches();
    }

    /**
     * @param launch   raw value of the launch parameter
     * @param clientId client_id of the authorization request (expected aud)
     * @param nowEpoch current time, seconds since the epoch
     */
    public LaunchContext verify(String launch, String clientId, long nowEpoch) throws LaunchTokenException {
        // 1. Structure: exactly header.payload.signature (JWSInput alone also accepts unsigned 2-part input).
        if (launch == null || launch.split("\\.", -1).length != 3) {
            throw new LaunchTokenException("launch is not a compact JWS");
        }
        JWSInput jws;
        try {
            jws = new JWSInput(launch);
        } catch (JWSInputException e) {
            throw new LaunchTokenException("launch is not a compact JWS");
        }

        // 2. Algorithm pinned to HS256 before any key is used ("none", RS256 etc. are refused).
        if (jws.getHeader() == null || jws.getHeader().getAlgorithm() != Algorithm.HS256) {
            throw new LaunchTokenException("launch must be signed with HS256");
        }

        // 3. Signature (constant-time compare inside HMACProvider).
        boolean valid;
        try {
            valid = HMACProvider.verify(jws, secret);
        } catch (RuntimeException e) {
            valid = false; // e.g. undecodable signature part
        }
        if (!valid) {
            throw new LaunchTokenException("launch signature is invalid");
        }

        // 4. Claims.
        Map<?, ?> claims;
        try {
            claims = jws.readJsonContent(Map.class);
        } catch (JWSInputException | RuntimeException e) {
            throw new LaunchTokenException("launch payload is not a JSON object");
        }
        if (claims == null) {
            throw new LaunchTokenException("launch payload is not a JSON object");
        }

        Long exp = numericDate(claims.get("exp"), "exp");
        if (exp == null) {
            throw new LaunchTokenException("launch has no exp");
        }
        if (nowEpoch > exp + CLOCK_SKEW_SECONDS) {
            throw new LaunchTokenException("launch is expired");
        }
        Long nbf = numericDate(claims.get("nbf"), "nbf");
        if (nbf != null && nowEpoch + CLOCK_SKEW_SECONDS < nbf) {
            throw new LaunchTokenException("launch is not yet valid");
        }

        if (!audienceMatches(claims.get("aud"), clientId)) {
            throw new LaunchTokenException("launch was issued for another client");
        }

        if (expectedIssuer != null && !expectedIssuer.equals(claims.get("iss"))) {
            throw new LaunchTokenException("launch has an unexpected issuer");
        }

        Object patient = claims.get("patient");
        if (!(patient instanceof String p) || p.isBlank()) {
            throw new LaunchTokenException("launch has no patient");
        }
        if (!isFhirId(p)) {
            throw new LaunchTokenException("launch patient is not a FHIR id");
        }

        Object encounter = claims.get("encounter");
        String enc = null;
        if (encounter != null) {
            if (!(encounter instanceof String e) || !isFhirId(e)) {
                throw new LaunchTokenException("launch encounter is not a FHIR id");
            }
            enc = e;
        }

        Object jti = claims.get("jti");
        if (jti != null && !(jti instanceof String)) {
            throw new LaunchTokenException("launch jti must be a string");
        }
        return new LaunchContext(p, enc, (String) jti, exp);
    }

    private static Long numericDate(Object value, String name) throws LaunchTokenException {
        if (value == null) {
            return null;
        }
        if (value instanceof Number n) {
            return n.longValue();
        }
        throw new LaunchTokenException("launch " + name + " is not a NumericDate");
    }

    private static boolean audienceMatches(Object aud, String clientId) {
        if (clientId == null) {
            return false;
        }
        if (aud instanceof String s) {
            return s.equals(clientId);
        }
        // RFC 7519 allows an array; accept it only when it names this client and nobody else.
        if (aud instanceof List<?> list) {
            return list.size() == 1 && clientId.equals(list.get(0));
        }
        return false;
    }
}
