package org.fhirlab.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.provider.ProviderConfigurationBuilder;

/**
 * Registers {@link SmartLaunchContextAuthenticator} under provider id {@value #PROVIDER_ID}
 * (listed in META-INF/services/org.keycloak.authentication.AuthenticatorFactory).
 *
 * <p>Execution config keys:
 * <ul>
 *   <li>{@value #CONFIG_SECRET} - HS256 secret for launch handles, at least 32 bytes (UTF-8). Falls back
 *       to realm attribute {@code smart.launch.secret}.</li>
 *   <li>{@value #CONFIG_ISSUER} - optional; when set, the launch handle's {@code iss} must equal it.</li>
 * </ul>
 */
public class SmartLaunchContextAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "fhirlab-smart-launch-context";
    public static final String CONFIG_SECRET = "launch.secret";
    public static final String CONFIG_ISSUER = "launch.issuer";

    // Stateless, so one instance serves every request.
    private static final SmartLaunchContextAuthenticator SINGLETON = new SmartLaunchContextAuthenticator();

    private static final List<ProviderConfigProperty> CONFIG = ProviderConfigurationBuilder.create()
            .property()
                .name(CONFIG_SECRET)
                .label("Launch secret (HS256)")
                .helpText("Shared secret the EHR signs launch handles with (min. 32 bytes). "
                        + "Empty: realm attribute smart.launch.secret is used.")
                .type(ProviderConfigProperty.PASSWORD)
                .secret(true)
                .add()
            .property()
                .name(CONFIG_ISSUER)
                .label("Expected launch issuer")
                .helpText("Optional. When set, the launch handle's iss claim must equal this value.")
                .type(ProviderConfigProperty.STRING_TYPE)
                .add()
            .build();

    private static final AuthenticationExecutionModel.Requirement[] REQUIREMENTS = {
            AuthenticationExecutionModel.Requirement.REQUIRED,
            AuthenticationExecutionModel.Requirement.DISABLED
    };

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "SMART launch context (fhirlab)";
    }

    @Override
    public String getHelpText() {
        return "Binds the SMART patient/encounter context to the user session: from a signed launch "
                + "parameter (EHR launch) or the user's patient attribute (scope launch/patient). "
                + "Place after the user is identified.";
    }

    @Override
    public String getReferenceCategory() {
        return "smart-launch-context";
    }

    @Override
    public boolean isConfigurable() {
        return true;
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    public AuthenticationExecutionModel.Requirement[] getRequirementChoices() {
        return REQUIREMENTS;
    }

    @Override
    public boolean isUserSetupAllowed() {
        return false;
    }

    @Override
    public Authenticator create(KeycloakSession session) {
        return SINGLETON;
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }
}
