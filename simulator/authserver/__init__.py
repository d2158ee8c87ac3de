"""Keycloak as the lab's SMART authorization server: scopes, client profiles, provisioning."""
