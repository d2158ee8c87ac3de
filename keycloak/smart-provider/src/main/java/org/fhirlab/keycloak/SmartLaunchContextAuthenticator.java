package org.fhirlab.keycloak;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.keycloak.OAuth2Constants;
import org.keycloak.OAuthErrorException;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.Authenticator;
import org.keycloak.common.util.Time;
import org.keycloak.events.Errors;
import org.keycloak.models.AuthenticatorConfigModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.protocol.oidc.OIDCAdvancedConfigWrapper;
import org.keycloak.protocol.oidc.OIDCLoginProtocol;
import org.keycloak.protocol.oidc.endpoints.AuthorizationEndpoint;
import org.keycloak.protocol.oidc.utils.OIDCRedirectUriBuilder;
import org.keycloak.protocol.oidc.utils.OIDCResponseMode;
import org.keycloak.protocol.oidc.utils.OIDCResponseType;
import org.keycloak.services.Urls;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * Binds the SMART launch context (patient, encounter) to the Keycloak user session.
 *
 * <p>Runs in a browser flow once the user is known. It writes user-session notes {@code patient} and
 * {@code encounter}; the built-in mapper {@code oidc-usersessionmodel-note-mapper}
 * (with {@code access.tokenResponse.claim=true}) then copies them into the access token and the token
 * response, and again on every refresh.
 *
 * <ol>
 *   <li>EHR launch: authorize parameter {@code launch} present → must be a valid HS256 launch JWS
 *       ({@link LaunchTokenVerifier}); its {@code patient}/{@code encounter} become the context.</li>
 *   <li>Standalone launch: scope {@code launch/patient} → the user's single attribute {@code patient}.</li>
 *   <li>Bare scope {@code launch} without a {@code launch} parameter → error (no context to bind).</li>
 *   <li>Otherwise no context (practitioner apps etc.).</li>
 * </ol>
 * A {@code patient} (or {@code encounter}) authorize parameter is never read: the client cannot choose
 * the patient.
 *
 * <p>Errors end the flow with an OAuth error redirect to the client's (already validated) redirect_uri:
 * {@code invalid_request} for a bad launch, {@code access_denied} for a user without a patient record,
 * {@code server_error} for a misconfigured secret. No code is issued.
 */
public class SmartLaunchContextAuthenticator implements Authenticator {

    private static final Logger LOG = Logger.getLogger(SmartLaunchContextAuthenticator.class);

    /** User-session note names (= the claim names the note mappers are configured with). */
    public static final String NOTE_PATIENT = "patient";
    public static final String NOTE_ENCOUNTER = "encounter";

    /** Authorize parameter carrying the EHR launch handle. */
    public static final String LAUNCH_PARAM = "launch";
    /** Keycloak stores unknown authorize parameters as auth-session client notes with this prefix. */
    static final String LAUNCH_CLIENT_NOTE =
            AuthorizationEndpoint.LOGIN_SESSION_NOTE_ADDITIONAL_REQ_PARAMS_PREFIX + LAUNCH_PARAM;

    public static final String SCOPE_LAUNCH = "launch";
    public static final String SCOPE_LAUNCH_PATIENT = "launch/patient";

    /** User attribute holding a patient user's own FHIR Patient id (must be declared in the user profile). */
    public static final String USER_ATTR_PATIENT = "patient";

    /** Realm attribute used when the execution has no config with {@code launch.secret}. */
    public static final String REALM_ATTR_SECRET = "smart.launch.secret";

    /** Prefix of single-use keys for launch jti values. */
    private static final String JTI_KEY_PREFIX = "fhirlab-smart-launch-jti:";

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        AuthenticationSessionModel authSession = context.getAuthenticationSession();
        String launch = authSession.getClientNote(LAUNCH_CLIENT_NOTE);
        List<String> scopes = requestedScopes(authSession);

        if (launch != null && !launch.isBlank()) {
            ehrLaunch(context, launch);
        } else if (scopes.contains(SCOPE_LAUNCH_PATIENT)) {
            standaloneLaunch(context);
        } else if (scopes.contains(SCOPE_LAUNCH)) {
            fail(context, OAuthErrorException.INVALID_REQUEST, "scope launch requires a launch parameter");
        } else {
            // No launch context for this authorization: make sure none lingers from an earlier SSO login.
            bindContext(context, null, null);
            context.success();
        }
    }

    /** EHR launch: the context comes only from the signed launch handle. */
    private void ehrLaunch(AuthenticationFlowContext context, String launch) {
        LaunchTokenVerifier verifier;
        try {
            verifier = new LaunchTokenVerifier(secret(context), config(context, SmartLaunchContextAuthenticatorFactory.CONFIG_ISSUER));
        } catch (IllegalArgumentException e) {
            LOG.errorf("fhirlab-smart-launch-context: %s (set '%s' on the execution config or realm attribute '%s')",
                    e.getMessage(), SmartLaunchContextAuthenticatorFactory.CONFIG_SECRET, REALM_ATTR_SECRET);
            fail(context, OAuthErrorException.SERVER_ERROR, "launch verification is not configured");
            return;
        }

        String clientId = context.getAuthenticationSession().getClient().getClientId();
        long now = Time.currentTime();
        LaunchTokenVerifier.LaunchContext ctx;
        try {
            ctx = verifier.verify(launch, clientId, now);
        } catch (LaunchTokenVerifier.LaunchTokenException e) {
            fail(context, OAuthErrorException.INVALID_REQUEST, e.getMessage());
            return;
        }

        // Optional replay protection: a launch carrying a jti is accepted once (until it expires).
        if (ctx.jti() != null) {
            long lifespan = Math.max(1, ctx.exp() + LaunchTokenVerifier.CLOCK_SKEW_SECONDS - now);
            if (!context.getSession().singleUseObjects().putIfAbsent(JTI_KEY_PREFIX + clientId + ":" + ctx.jti(), lifespan)) {
                fail(context, OAuthErrorException.INVALID_REQUEST, "launch has already been used");
                return;
            }
        }

        bindContext(context, ctx.patient(), ctx.encounter());
        context.success();
    }

    /** Standalone patient launch: the patient is the signed-in user's own record. */
    private void standaloneLaunch(AuthenticationFlowContext context) {
        UserModel user = context.getUser();
        List<String> values = user.getAttributeStream(USER_ATTR_PATIENT)
                .filter(v -> v != null && !v.isBlank())
                .distinct()
                .collect(Collectors.toList());
        if (values.size() != 1) {
            fail(context, OAuthErrorException.ACCESS_DENIED,
                    values.isEmpty() ? "user has no patient record" : "user has more than one patient record");
            return;
        }
        String patient = values.get(0);
        if (!LaunchTokenVerifier.isFhirId(patient)) {
            fail(context, OAuthErrorException.ACCESS_DENIED, "user patient attribute is not a FHIR id");
            return;
        }
        bindContext(context, patient, null);
        context.success();
    }

    /**
     * Writes the context as user-session notes (copied into the user session when the flow finishes).
     * Notes this authorization does not set are removed from an existing SSO user session, so a context
     * from an earlier login never leaks into this one. Note: the context lives in the user session, which
     * is shared by all clients of one SSO login; the last launch wins, also for other clients' refreshes.
     */
    private void bindContext(AuthenticationFlowContext context, String patient, String encounter) {
        AuthenticationSessionModel authSession = context.getAuthenticationSession();
        if (patient != null) {
            authSession.setUserSessionNote(NOTE_PATIENT, patient);
        }
        if (encounter != null) {
            authSession.setUserSessionNote(NOTE_ENCOUNTER, encounter);
        }
        // Root authentication session id == user session id (Keycloak reuses it for SSO).
        KeycloakSession session = context.getSession();
        UserSessionModel existing = session.sessions().getUserSession(context.getRealm(), authSession.getParentSession().getId());
        if (existing != null && context.getUser() != null && existing.getUser() != null
                && existing.getUser().getId().equals(context.getUser().getId())) {
            if (patient == null) {
                existing.removeNote(NOTE_PATIENT);
            }
            if (encounter == null) {
                existing.removeNote(NOTE_ENCOUNTER);
            }
        }
    }

    /**
     * Ends the flow with an OAuth 2.0 error redirect (RFC 6749 4.1.2.1) to the client's redirect_uri,
     * honouring response_mode and RFC 9207 iss, like Keycloak's own OIDCLoginProtocol.sendError (which
     * cannot emit invalid_request). Sent as a challenge, not context.failure(): the user's credentials
     * were fine, so brute-force counters must not count a bad launch handle (failure() would call
     * logFailure()). A LOGIN_ERROR event with detail smart_launch_error is recorded instead.
     */
    private void fail(AuthenticationFlowContext context, String error, String description) {
        AuthenticationSessionModel authSession = context.getAuthenticationSession();
        RealmModel realm = context.getRealm();
        KeycloakSession session = context.getSession();
        LOG.debugf("fhirlab-smart-launch-context: client=%s user=%s %s: %s", authSession.getClient().getClientId(),
                context.getUser() == null ? null : context.getUser().getUsername(), error, description);

        if (authSession.getRedirectUri() == null) {
            // Not a redirect-based flow (e.g. device authorization): show Keycloak's error page instead
            // (Keycloak logs the LOGIN_ERROR event itself on this path).
            context.failure(AuthenticationFlowError.GENERIC_AUTHENTICATION_ERROR, null, description, description);
            return;
        }

        if (context.getUser() != null) {
            context.getEvent().user(context.getUser());
        }
        // LOGIN_ERROR event: error = the OAuth error (invalid_request / access_denied) or invalid_config.
        context.getEvent()
                .detail("smart_launch_error", description)
                .error(OAuthErrorException.SERVER_ERROR.equals(error) ? Errors.INVALID_CONFIG : error);

        OIDCResponseType responseType = OIDCResponseType.parse(authSession.getClientNote(OIDCLoginProtocol.RESPONSE_TYPE_PARAM));
        OIDCResponseMode responseMode = OIDCResponseMode.parse(authSession.getClientNote(OIDCLoginProtocol.RESPONSE_MODE_PARAM), responseType);
        OIDCRedirectUriBuilder redirect = OIDCRedirectUriBuilder.fromUri(authSession.getRedirectUri(), responseMode, session, null)
                .addParam(OAuth2Constants.ERROR, error)
                .addParam(OAuth2Constants.ERROR_DESCRIPTION, description);
        String state = authSession.getClientNote(OIDCLoginProtocol.STATE_PARAM);
        if (state != null) {
            redirect.addParam(OAuth2Constants.STATE, state);
        }
        if (!OIDCAdvancedConfigWrapper.fromClientModel(authSession.getClient()).isExcludeIssuerFromAuthResponse()) {
            redirect.addParam(OAuth2Constants.ISSUER, Urls.realmIssuer(session.getContext().getUri().getBaseUri(), realm.getName()));
        }
        Response response = redirect.build();
        // The tab's authentication session is left to expire; a re-post to it gets Keycloak's
        // "Page has expired" page (verified), and action() would re-evaluate anyway.
        context.forceChallenge(response);
    }

    private static List<String> requestedScopes(AuthenticationSessionModel authSession) {
        String scope = authSession.getClientNote(OIDCLoginProtocol.SCOPE_PARAM);
        return scope == null ? List.of() : Arrays.asList(scope.trim().split("\\s+"));
    }

    private static String config(AuthenticationFlowContext context, String key) {
        AuthenticatorConfigModel cfg = context.getAuthenticatorConfig();
        Map<String, String> map = cfg == null ? null : cfg.getConfig();
        return map == null ? null : map.get(key);
    }

    private static String secret(AuthenticationFlowContext context) {
        String secret = config(context, SmartLaunchContextAuthenticatorFactory.CONFIG_SECRET);
        if (secret == null || secret.isBlank()) {
            secret = context.getRealm().getAttribute(REALM_ATTR_SECRET);
        }
        return secret;
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        // No form of our own. Reached only if a client re-posts to a tab we already answered with an
        // error redirect: evaluate again (same inputs, same outcome).
        authenticate(context);
    }

    @Override
    public boolean requiresUser() {
        return true;
    }

    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        return true;
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
    }

    @Override
    public void close() {
    }
}
