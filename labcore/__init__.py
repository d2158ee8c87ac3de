"""The lab's shared core: what the gateway, the seeder and the simulator all need.

Models and their loaders (SMART scopes, client profiles, tenants, YAML documents with line-exact
errors), where the lab lives (`config`), the Keycloak admin client, and the base error. Imports run
one way: this package imports none of `gateway`, `seed` or `simulator`; `gateway` and `seed` import
only it; `simulator` sits on top (the contract is in pyproject.toml, checked by `lint-imports`).
"""
