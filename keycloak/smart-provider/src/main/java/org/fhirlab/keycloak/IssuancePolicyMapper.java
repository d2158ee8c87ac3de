package org.fhirlab.keycloak;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.OAuth2Constants;
import org.keycloak.OAuthErrorException;
import org.keycloak.common.util.Time;
import org.keycloak.events.EventBuilder;
import org.keycloak.events.EventType;
import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.Constants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.protocol.oidc.OIDCLoginProtocol;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenResponseMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.AccessToken;
import org.keycloak.representations.AccessTokenResponse;
import org.keycloak.services.ErrorResponseException;

/**
 * The lab's SMART issuance policy, applied by Keycloak when it issues an access token.
 *
 * <p>Attached to a client as a protocol mapper by {@code fhirlab clients apply} when the client's
 * profile has an {@code issuance} block; its configuration holds the rules the lab worked out
 * ({@link IssuancePolicy}). On every token (authorization code, refresh, client credentials):
 * <ul>
 *   <li>the {@code scope} claim becomes what the rules grant (C01, C04, C05 per scope; C11 leaves
 *       out what the request did not ask for), and the token response's {@code scope} says the
 *       same, as SMART requires when the grant differs from the request;</li>
 *   <li>{@code exp} is capped (C02), and {@code expires_in} follows;</li>
 *   <li>an offline refresh token is withheld from the response (C03);</li>
 *   <li>a client-credentials request gets {@code invalid_scope} and no token (C04).</li>
 * </ul>
 * Each decision, enforced or monitored, is recorded as a Keycloak event of the token request's
 * own type ({@code CODE_TO_TOKEN}, {@code REFRESH_TOKEN}, {@code CLIENT_LOGIN}; a refusal
 * {@code CLIENT_LOGIN_ERROR}) with the details {@code fhirlab_control}, {@code fhirlab_mode},
 * {@code fhirlab_scope}, {@code fhirlab_action} and {@code fhirlab_reason}, one event per
 * decision. Rules that cannot be read refuse the token (fail closed).
 */
public class IssuancePolicyMapper extends AbstractOIDCProtocolMapper
        implements OIDCAccessTokenMapper, OIDCAccessTokenResponseMapper {

    public static final String PROVIDER_ID = "fhirlab-smart-issuance-policy";
    public static final String RULES = "fhirlab.issuance.rules";

    private static final Logger LOG = Logger.getLogger(IssuancePolicyMapper.class);
    private static final String GRANTED = "fhirlab.issuance.granted";
    private static final String EXPIRES = "fhirlab.issuance.exp";
    private static final String POLICY = "fhirlab.issuance.policy";
    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        ProviderConfigProperty rules = new ProviderConfigProperty();
        rules.setName(RULES);
        rules.setLabel("Issuance rules (JSON)");
        rules.setType(ProviderConfigProperty.TEXT_TYPE);
        rules.setHelpText("Written by `fhirlab clients apply` from the client's profile (labcore/issuance.py).");
        CONFIG.add(rules);
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getDisplayType() {
        return "fhirlab SMART issuance policy";
    }

    @Override
    public String getHelpText() {
        return "Down-scopes, narrows wildcards, caps lifetime and withholds offline access at token issuance.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    public AccessToken transformAccessToken(AccessToken token, ProtocolMapperModel model, KeycloakSession session,
                                            UserSessionModel userSession, ClientSessionContext ctx) {
        IssuancePolicy policy = policy(model, session);
        ctx.setAttribute(POLICY, policy);
        String grant = ctx.getAttribute(Constants.GRANT_TYPE, String.class);  // null outside the token endpoint
        List<IssuancePolicy.Decision> decisions = new ArrayList<>();
        if (OAuth2Constants.CLIENT_CREDENTIALS.equals(grant)) {
            IssuancePolicy.Decision refusal = policy.serviceAccountDecision();
            if (refusal != null) {
                if (refusal.enforced()) {
                    record(session, userSession, EventType.CLIENT_LOGIN_ERROR, List.of(refusal));
                    throw new ErrorResponseException(OAuthErrorException.INVALID_SCOPE, refusal.reason(),
                            Response.Status.BAD_REQUEST);
                }
                decisions.add(refusal);
            }
        }
        List<String> granted = token.getScope() == null ? List.of()
                : Arrays.asList(token.getScope().trim().split("\\s+"));
        String requested = ctx.getClientSession().getNote(OIDCLoginProtocol.SCOPE_PARAM);
        IssuancePolicy.Outcome outcome = policy.decide(granted, requested);
        decisions.addAll(outcome.decisions());
        if (outcome.changed()) {
            String scope = String.join(" ", outcome.scopes());
            token.setScope(scope);
            ctx.setAttribute(GRANTED, scope);
        }
        long iat = token.getIat() == null ? Time.currentTime() : token.getIat();
        long exp = token.getExp() == null ? 0 : token.getExp();
        IssuancePolicy.Decision lifetime = policy.lifetimeDecision(iat, exp);
        if (lifetime != null) {
            decisions.add(lifetime);
            long capped = policy.cappedExpiry(iat, exp);
            if (capped != exp) {
                token.exp(capped);
                ctx.setAttribute(EXPIRES, capped);
            }
        }
        if (!decisions.isEmpty()) {  // C03's decision is offline_access's own, in the table
            record(session, userSession, eventType(grant), decisions);
        }
        return token;
    }

    @Override
    public AccessTokenResponse transformAccessTokenResponse(AccessTokenResponse response, ProtocolMapperModel model,
                                                            KeycloakSession session, UserSessionModel userSession,
                                                            ClientSessionContext ctx) {
        String granted = ctx.getAttribute(GRANTED, String.class);
        Long exp = ctx.getAttribute(EXPIRES, Long.class);
        if (exp != null) {
            response.setExpiresIn(Math.max(0, exp - Time.currentTime()));
        }
        if (ctx.isOfflineTokenRequested()) {
            IssuancePolicy policy = ctx.getAttribute(POLICY, IssuancePolicy.class);
            if (policy == null) {  // not read for this token yet
                policy = policy(model, session);
            }
            IssuancePolicy.Decision offline = policy.offlineDecision();
            if (offline != null && offline.enforced()) {
                response.setRefreshToken(null);
                response.setRefreshExpiresIn(0);
            }
        }
        return granted == null ? response : GrantedScopeResponse.of(response, granted);
    }

    private static IssuancePolicy policy(ProtocolMapperModel model, KeycloakSession session) {
        try {
            return IssuancePolicy.parse(model.getConfig().get(RULES));
        } catch (IssuancePolicy.RulesException e) {
            LOG.errorf("issuance policy of %s cannot be read: %s; no token issued",
                    session.getContext().getClient().getClientId(), e.getMessage());
            throw new ErrorResponseException(OAuthErrorException.SERVER_ERROR,
                    "the client's issuance policy cannot be read", Response.Status.INTERNAL_SERVER_ERROR);
        }
    }

    private static EventType eventType(String grant) {
        if (OAuth2Constants.CLIENT_CREDENTIALS.equals(grant)) {
            return EventType.CLIENT_LOGIN;
        }
        if (OAuth2Constants.REFRESH_TOKEN.equals(grant)) {
            return EventType.REFRESH_TOKEN;
        }
        return EventType.CODE_TO_TOKEN;
    }

    private static void record(KeycloakSession session, UserSessionModel userSession, EventType type,
                               List<IssuancePolicy.Decision> decisions) {
        var context = session.getContext();
        for (IssuancePolicy.Decision d : decisions) {
            EventBuilder event = new EventBuilder(context.getRealm(), session, context.getConnection())
                    .event(type)
                    .client(context.getClient())
                    .detail("fhirlab_control", d.control())
                    .detail("fhirlab_mode", d.mode())
                    .detail("fhirlab_action", d.action())
                    .detail("fhirlab_reason", d.reason());
            if (d.scope() != null) {
                event.detail("fhirlab_scope", d.scope());
            }
            if (userSession != null) {
                event.user(userSession.getUser()).session(userSession);
            }
            if (type == EventType.CLIENT_LOGIN_ERROR) {
                event.error(OAuthErrorException.INVALID_SCOPE);
            } else {
                event.success();
            }
            LOG.debugf("issuance %s %s %s: %s", d.control(), d.mode(), d.scope(), d.action());
        }
    }

}
