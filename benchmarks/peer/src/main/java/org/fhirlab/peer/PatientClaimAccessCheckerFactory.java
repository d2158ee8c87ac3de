package org.fhirlab.peer;

import ca.uhn.fhir.context.FhirContext;
import com.auth0.jwt.interfaces.DecodedJWT;
import com.google.fhir.gateway.HttpFhirClient;
import com.google.fhir.gateway.interfaces.AccessChecker;
import com.google.fhir.gateway.interfaces.AccessCheckerFactory;
import com.google.fhir.gateway.interfaces.PatientFinder;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.stereotype.Component;

/**
 * The peer's published patient access checker ({@code ACCESS_CHECKER=patient}), fed the lab's tokens.
 *
 * <p>The published checker takes the patient in context from a {@code patient_id} claim; the lab's
 * Keycloak puts it in the SMART {@code patient} claim (a session note of the lab's launch
 * authenticator). Rather than add a claim to the lab's Keycloak clients, this factory hands the
 * published factory the same verified token with {@code patient} readable under the name
 * {@code patient_id} too ({@link PatientIdAlias}). Every decision is still the published checker's.
 * Selected with {@code ACCESS_CHECKER=patient-claim}.
 */
@Component("patient-claim")
public class PatientClaimAccessCheckerFactory implements AccessCheckerFactory {

    private final AccessCheckerFactory published;

    public PatientClaimAccessCheckerFactory(@Qualifier("patient") AccessCheckerFactory published) {
        this.published = published;
    }

    @Override
    public AccessChecker create(
            DecodedJWT jwt, HttpFhirClient httpFhirClient, FhirContext fhirContext, PatientFinder patientFinder) {
        return published.create(new PatientIdAlias(jwt), httpFhirClient, fhirContext, patientFinder);
    }
}
