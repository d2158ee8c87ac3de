package org.fhirlab.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

import org.junit.jupiter.api.Test;
import org.keycloak.jose.jws.Algorithm;
import org.keycloak.jose.jws.crypto.HMACProvider;

/** Launch-handle checks, without a running Keycloak. */
class LaunchTokenVerifierTest {

    private static final String SECRET = "0123456789abcdef0123456789abcdef-test";
    private static final long NOW = 1_800_000_000L;
    private final LaunchTokenVerifier verifier = new LaunchTokenVerifier(SECRET, null);

    private static String b64(String s) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String sign(String headerJson, String payloadJson, String secret) {
        String input = b64(headerJson) + "." + b64(payloadJson);
        byte[] sig = HMACProvider.sign(input.getBytes(StandardCharsets.UTF_8), Algorithm.HS256,
                secret.getBytes(StandardCharsets.UTF_8));
        return input + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(sig);
    }

    private static String hs256(String payloadJson) {
        return sign("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloadJson, SECRET);
    }

    private String reason(String launch) {
        return assertThrows(LaunchTokenVerifier.LaunchTokenException.class,
                () -> verifier.verify(launch, "app", NOW)).getMessage();
    }

    @Test
    void validHandleYieldsContext() throws Exception {
        var ctx = verifier.verify(hs256("{\"patient\":\"pat-a-000042\",\"encounter\":\"enc-1\",\"aud\":\"app\",\"exp\":"
                + (NOW + 60) + ",\"jti\":\"j1\"}"), "app", NOW);
        assertEquals("pat-a-000042", ctx.patient());
        assertEquals("enc-1", ctx.encounter());
        assertEquals("j1", ctx.jti());
    }

    @Test
    void audienceArrayWithOnlyThisClientIsAccepted() throws Exception {
        var ctx = verifier.verify(hs256("{\"patient\":\"p1\",\"aud\":[\"app\"],\"exp\":" + (NOW + 60) + "}"), "app", NOW);
        assertNull(ctx.encounter());
        assertTrue(reason(hs256("{\"patient\":\"p1\",\"aud\":[\"app\",\"other\"],\"exp\":" + (NOW + 60) + "}"))
                .contains("another client"));
    }

    @Test
    void skewIsThirtySeconds() throws Exception {
        verifier.verify(hs256("{\"patient\":\"p1\",\"aud\":\"app\",\"exp\":" + (NOW - 30) + "}"), "app", NOW);
        assertEquals("launch is expired", reason(hs256("{\"patient\":\"p1\",\"aud\":\"app\",\"exp\":" + (NOW - 31) + "}")));
    }

    @Test
    void rejects() {
        long exp = NOW + 60;
        assertEquals("launch signature is invalid", reason(sign("{\"alg\":\"HS256\"}",
                "{\"patient\":\"p1\",\"aud\":\"app\",\"exp\":" + exp + "}", "another-secret-another-secret-0000")));
        assertEquals("launch must be signed with HS256", reason(sign("{\"alg\":\"HS512\"}",
                "{\"patient\":\"p1\",\"aud\":\"app\",\"exp\":" + exp + "}", SECRET)));
        assertEquals("launch must be signed with HS256",
                reason(b64("{\"alg\":\"none\"}") + "." + b64("{\"patient\":\"p1\",\"aud\":\"app\",\"exp\":" + exp + "}") + "."));
        assertEquals("launch is not a compact JWS", reason("opaque-launch-id"));
        assertEquals("launch is not a compact JWS", reason("a.b.c"));
        assertEquals("launch was issued for another client", reason(hs256("{\"patient\":\"p1\",\"aud\":\"other\",\"exp\":" + exp + "}")));
        assertEquals("launch was issued for another client", reason(hs256("{\"patient\":\"p1\",\"exp\":" + exp + "}")));
        assertEquals("launch has no patient", reason(hs256("{\"aud\":\"app\",\"exp\":" + exp + "}")));
        assertEquals("launch has no exp", reason(hs256("{\"patient\":\"p1\",\"aud\":\"app\"}")));
        assertEquals("launch patient is not a FHIR id", reason(hs256("{\"patient\":\"../Observation\",\"aud\":\"app\",\"exp\":" + exp + "}")));
        assertEquals("launch payload is not a JSON object", reason(hs256("[1,2]")));
    }

    @Test
    void issuerCheckedWhenConfigured() throws Exception {
        var strict = new LaunchTokenVerifier(SECRET, "https://ehr.example");
        String ok = hs256("{\"patient\":\"p1\",\"aud\":\"app\",\"iss\":\"https://ehr.example\",\"exp\":" + (NOW + 60) + "}");
        String bad = hs256("{\"patient\":\"p1\",\"aud\":\"app\",\"iss\":\"https://evil\",\"exp\":" + (NOW + 60) + "}");
        strict.verify(ok, "app", NOW);
        assertThrows(LaunchTokenVerifier.LaunchTokenException.class, () -> strict.verify(bad, "app", NOW));
    }

    @Test
    void shortSecretRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LaunchTokenVerifier("short", null));
    }
}
