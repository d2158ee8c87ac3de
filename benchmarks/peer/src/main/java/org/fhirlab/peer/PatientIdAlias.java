package org.fhirlab.peer;

import com.auth0.jwt.interfaces.Claim;
import com.auth0.jwt.interfaces.DecodedJWT;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A verified token, unchanged except that a missing {@code patient_id} claim reads as the SMART
 * {@code patient} claim. Reading the alias costs one map lookup more than reading the claim.
 */
final class PatientIdAlias implements DecodedJWT {

    static final String PEER_CLAIM = "patient_id";
    static final String SMART_CLAIM = "patient";

    private final DecodedJWT token;

    PatientIdAlias(DecodedJWT token) {
        this.token = token;
    }

    @Override
    public Claim getClaim(String name) {
        Claim claim = token.getClaim(name);
        return PEER_CLAIM.equals(name) && claim.isMissing() ? token.getClaim(SMART_CLAIM) : claim;
    }

    @Override
    public Map<String, Claim> getClaims() {
        Map<String, Claim> claims = new HashMap<>(token.getClaims());
        Claim patient = claims.get(SMART_CLAIM);
        if (patient != null) {
            claims.putIfAbsent(PEER_CLAIM, patient);
        }
        return claims;
    }

    // ---- everything else as the token says -------------------------------------------------
    @Override
    public String getToken() {
        return token.getToken();
    }

    @Override
    public String getHeader() {
        return token.getHeader();
    }

    @Override
    public String getPayload() {
        return token.getPayload();
    }

    @Override
    public String getSignature() {
        return token.getSignature();
    }

    @Override
    public String getAlgorithm() {
        return token.getAlgorithm();
    }

    @Override
    public String getType() {
        return token.getType();
    }

    @Override
    public String getContentType() {
        return token.getContentType();
    }

    @Override
    public String getKeyId() {
        return token.getKeyId();
    }

    @Override
    public Claim getHeaderClaim(String name) {
        return token.getHeaderClaim(name);
    }

    @Override
    public String getIssuer() {
        return token.getIssuer();
    }

    @Override
    public String getSubject() {
        return token.getSubject();
    }

    @Override
    public List<String> getAudience() {
        return token.getAudience();
    }

    @Override
    public Date getExpiresAt() {
        return token.getExpiresAt();
    }

    @Override
    public Date getNotBefore() {
        return token.getNotBefore();
    }

    @Override
    public Date getIssuedAt() {
        return token.getIssuedAt();
    }

    @Override
    public String getId() {
        return token.getId();
    }
}
