package org.fhirlab.keycloak;

import com.fasterxml.jackson.annotation.JsonIgnore;
import org.keycloak.representations.AccessTokenResponse;
import org.keycloak.util.JsonSerialization;

/**
 * A token response whose {@code scope} is the scope actually granted.
 *
 * <p>Keycloak 26.5 sets the response's {@code scope} from the client session's scopes after the
 * protocol mappers ran ({@code TokenManager.AccessTokenResponseBuilder.build}), so a mapper that
 * narrows the token's {@code scope} claim cannot say so in the response by setting the field. The
 * mapper returns this copy of the response instead: a later {@code setScope} keeps the granted
 * scope, as SMART requires the response to report when it differs from the request.
 */
final class GrantedScopeResponse extends AccessTokenResponse {

    @JsonIgnore
    private String granted;

    static AccessTokenResponse of(AccessTokenResponse response, String granted) {
        GrantedScopeResponse copy = JsonSerialization.mapper.convertValue(response, GrantedScopeResponse.class);
        copy.granted = granted;
        copy.setScope(granted);
        return copy;
    }

    @Override
    public void setScope(String scope) {
        super.setScope(granted != null ? granted : scope);
    }
}
