package org.fhirlab.peer;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.web.servlet.ServletComponentScan;

/**
 * Runs google/fhir-gateway's published proxy (Maven Central {@code com.google.fhir.gateway:server}
 * and {@code :plugins}) as a Spring Boot application, the way the peer's own exec module does.
 *
 * <p>The server artifact holds the proxy servlet ({@code FhirProxyServer}, mapped to {@code /fhir/*}
 * by its {@code @WebServlet} annotation, hence the servlet component scan over its package); the
 * plugins artifact holds the access checkers, found by the component scan under their
 * {@code @Named} names. This package adds one more checker, {@code patient-claim}: see
 * {@link PatientClaimAccessCheckerFactory}.
 *
 * <p>Configured by the peer's environment variables only (PROXY_TO, TOKEN_ISSUER, ACCESS_CHECKER,
 * BACKEND_TYPE, RUN_MODE, ALLOWED_QUERIES_FILE); the port by {@code --server.port}.
 */
@SpringBootApplication(scanBasePackages = {"com.google.fhir.gateway.plugin", "org.fhirlab.peer"})
@ServletComponentScan(basePackages = "com.google.fhir.gateway")
public class PeerLauncher {

    public static void main(String[] args) {
        SpringApplication.run(PeerLauncher.class, args);
    }
}
