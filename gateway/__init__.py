"""The policy-enforcement gateway: SMART scopes, request classification and controls as stages."""
