"""Native lab stack: Keycloak, HAPI FHIR and the gateway as background processes on loopback."""
