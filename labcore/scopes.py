"""SMART App Launch scopes: parse once, decide fast (controls C01, C03, C05).

Grammar (SMART App Launch 2.x, with the v1 forms it still accepts)::

    resource scope  = context "/" type "." permissions [ "?" constraints ]
    context         = "patient" | "user" | "system"            (case-sensitive)
    type            = "*" | [A-Z][A-Za-z]+
    permissions     = v1: "read" | "write" | "*"    ->  "rs" | "cud" | "cruds"
                      v2: a non-empty, in-order subset of "cruds" ("rs", "cud", "cruds")
    constraints     = v2 only, query-string syntax: "category=<system>|<code>&code=..."

Everything else in a scope string is a non-resource scope: the SMART ones (`launch`,
`launch/patient`, `launch/encounter`, `openid`, `fhirUser`, `profile`, `offline_access`,
`online_access`) or unknown ones (Keycloak adds `email`, `roles`, ...).

A scope string is client-influenced input: `parse_scopes` never raises; tokens that look like
resource scopes but do not parse are collected in `ScopeSet.invalid` with the reason. The single
token parser `parse_scope` raises only `ScopeError`.

Decision precedence in `ScopeSet.permits`: an unconstrained scope that covers the request always
wins over constrained ones; among candidates a scope naming the type wins over a `*` scope, then
the order of the caller's contexts, then the order in the scope string.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "CONTEXTS",
    "PERMISSIONS",
    "SPECIAL_SCOPES",
    "Context",
    "InvalidScope",
    "Permission",
    "ResourceScope",
    "ScopeDecision",
    "ScopeError",
    "ScopeSet",
    "interaction_permission",
    "parse_scope",
    "parse_scopes",
]

Context = Literal["patient", "user", "system"]
Permission = Literal["c", "r", "u", "d", "s"]
Constraint = tuple[str, str]

CONTEXTS: Final[tuple[Context, ...]] = ("patient", "user", "system")
_CONTEXT_BY_NAME: Final[dict[str, Context]] = {c: c for c in CONTEXTS}
PERMISSIONS: Final[str] = "cruds"
SPECIAL_SCOPES: Final[frozenset[str]] = frozenset(
    {
        "launch",
        "launch/patient",
        "launch/encounter",
        "openid",
        "fhirUser",
        "profile",
        "offline_access",
        "online_access",
    }
)

_V1_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "read": frozenset("rs"),
    "write": frozenset("cud"),
    "*": frozenset(PERMISSIONS),
}
_V2_PERMISSIONS: Final = re.compile(r"c?r?u?d?s?")
_RESOURCE_TYPE: Final = re.compile(r"\*|[A-Z][A-Za-z]+")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_MAX_CONSTRAINTS: Final = 16
_MAX_SCOPE_STRING: Final = 16_384

_INTERACTION_PERMISSION: Final[dict[str, Permission]] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "search-system": "s",
    "search-compartment": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


class ScopeError(ValueError):
    """One scope token is not a valid SMART resource scope."""

    def __init__(self, token: str, reason: str) -> None:
        super().__init__(f"invalid scope {token[:120]!r}: {reason}")
        self.token = token
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One parsed resource scope, e.g. `patient/Observation.rs?category=...|laboratory`."""

    context: Context
    resource_type: str
    permissions: frozenset[str]
    constraints: tuple[Constraint, ...] = ()
    version: Literal[1, 2] = 2
    raw: str = ""

    @property
    def is_wildcard(self) -> bool:
        return self.resource_type == "*"

    @property
    def permission_string(self) -> str:
        """The permissions in SMART v2 order, e.g. `"rs"`."""
        return "".join(p for p in PERMISSIONS if p in self.permissions)

    @property
    def canonical(self) -> str:
        """The scope in SMART v2 syntax; equal for v1 and v2 spellings of the same grant."""
        text = f"{self.context}/{self.resource_type}.{self.permission_string}"
        if self.constraints:
            text += "?" + urlencode(self.constraints, safe="|:/")
        return text

    def covers(self, resource_type: str, permission: str) -> bool:
        """Type and permission match, constraints aside."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)


@dataclass(frozen=True, slots=True)
class InvalidScope:
    """A token that looked like a resource scope but did not parse."""

    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    """The outcome of `ScopeSet.permits`.

    `needs_result_filter` holds the constraints of `matched` when the grant is conditional: the
    resource(s) read, returned by a search, written or deleted must satisfy every one of them
    (the gateway checks them on the response, or on the body for writes). Empty means no check.
    `result_filter_any` lists the constraint sets of every constrained scope that covers the
    request, `matched`'s first: a resource satisfying any one set is allowed. Using only
    `needs_result_filter` is stricter (may refuse more), never looser.
    """

    allowed: bool
    matched: ResourceScope | None
    needs_result_filter: tuple[Constraint, ...]
    reason: str
    result_filter_any: tuple[tuple[Constraint, ...], ...] = ()

    @property
    def conditional(self) -> bool:
        return self.allowed and bool(self.needs_result_filter)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """Every token of a granted scope string, sorted into resource, special, unknown, invalid."""

    resource_scopes: tuple[ResourceScope, ...] = ()
    special: frozenset[str] = frozenset()
    unknown: tuple[str, ...] = ()
    invalid: tuple[InvalidScope, ...] = ()
    tokens: tuple[str, ...] = ()
    _index: dict[tuple[str, str, str], tuple[ResourceScope, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _contexts: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)
    _reads: dict[str, ScopeDecision] = field(init=False, repr=False, compare=False, hash=False)
    _decisions: dict[tuple[str, str], ScopeDecision] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str, str], list[ResourceScope]] = {}
        for scope in self.resource_scopes:
            for perm in scope.permissions:
                index.setdefault((scope.context, scope.resource_type, perm), []).append(scope)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})
        # read on every request (C01, C05): worked out once per scope string
        object.__setattr__(self, "_contexts", frozenset(s.context for s in self.resource_scopes))
        object.__setattr__(self, "_reads", {})
        object.__setattr__(self, "_decisions", {})

    def __str__(self) -> str:
        return " ".join(self.tokens)

    # -- properties used by policy -------------------------------------------------------------

    @property
    def contexts(self) -> frozenset[str]:
        return self._contexts

    def has_context(self, context: str) -> bool:
        return any(s.context == context for s in self.resource_scopes)

    @property
    def resource_types(self) -> frozenset[str]:
        """Resource types named by resource scopes, `*` included when a wildcard is granted."""
        return frozenset(s.resource_type for s in self.resource_scopes)

    @property
    def wildcard_scopes(self) -> tuple[ResourceScope, ...]:
        return tuple(s for s in self.resource_scopes if s.is_wildcard)

    @property
    def has_offline_access(self) -> bool:
        return "offline_access" in self.special

    @property
    def has_online_access(self) -> bool:
        return "online_access" in self.special

    # -- the decision --------------------------------------------------------------------------

    def read_decision(self, resource_type: str) -> ScopeDecision:
        """`permits(contexts, resource_type, "r")`, remembered per type: asked of every resource
        of every answer (a scope string's decisions do not change)."""
        decision = self._reads.get(resource_type)
        if decision is None:
            if len(self._reads) > 512:  # resource types are few; anything else is not kept
                return self.permits(self._contexts, resource_type, "r")
            decision = self._reads[resource_type] = self.permits(self._contexts, resource_type, "r")
        return decision

    def decision(
        self, resource_type: str, permission: str, params: Sequence[tuple[str, str]] = ()
    ) -> ScopeDecision:
        """`permits(contexts, resource_type, permission, params)` with every context the scopes
        name, remembered per type and permission where the request's parameters cannot change
        it: asked on every request, and a scope string's decisions do not change. A search that
        only constrained scopes cover is decided on its parameters each time."""
        key = (resource_type, permission)
        decision = self._decisions.get(key)
        if decision is not None:
            return decision
        decision = self.permits(self._contexts, resource_type, permission, params)
        # the types a client asks for are few; the names in a request path are the client's to
        # choose, so past a handful nothing more is kept (and the decision is worked out anew)
        if len(self._decisions) < _MAX_DECISIONS and not self._params_matter(
            resource_type, permission
        ):
            self._decisions[key] = decision
        return decision

    def _params_matter(self, resource_type: str, permission: str) -> bool:
        """Could `permits` decide differently for other search parameters? Only for a search
        whose every candidate scope is constrained (see `permits`)."""
        if permission != "s":
            return False
        candidates = self._candidates(tuple(self._contexts), resource_type, permission)
        return bool(candidates) and all(scope.constraints for scope in candidates)

    def permits(
        self,
        context_kinds: Collection[str] | str,
        resource_type: str,
        permission: str,
        params: Sequence[tuple[str, str]] = (),
    ) -> ScopeDecision:
        """May a token with these scopes do `permission` on `resource_type`?

        `context_kinds` are the scope contexts that count for this token (the caller's policy:
        e.g. only `patient` for a patient-context AI client). `params` are the request's search
        parameters, used to satisfy constraints on searches (`s`): a constrained scope permits a
        search only if the request carries each constraint parameter with exactly that value.
        Reads and writes under a constrained scope are conditional (see `ScopeDecision`).
        A `resource_type` of `*` (e.g. a compartment search over all types) is covered only by
        wildcard scopes.
        """
        if permission not in _PERMISSION_SET:
            raise ValueError(f"permission must be one of c, r, u, d, s; got {permission!r}")
        kinds = (context_kinds,) if isinstance(context_kinds, str) else tuple(context_kinds)
        candidates = self._candidates(kinds, resource_type, permission)
        wanted = f"{'|'.join(kinds) or '(no context)'}/{resource_type}.{permission}"
        if not candidates:
            return ScopeDecision(False, None, (), f"no granted scope covers {wanted}")
        for scope in candidates:
            if not scope.constraints:
                return ScopeDecision(True, scope, (), f"{wanted} granted by {scope.raw}")
        if permission == "s":
            present = set(params)
            satisfied = [s for s in candidates if all(c in present for c in s.constraints)]
            if not satisfied:
                need = " or ".join(_constraint_text(s.constraints) for s in candidates)
                return ScopeDecision(
                    False,
                    None,
                    (),
                    f"{wanted} is granted only for searches with {need}",
                )
            first = satisfied[0]
            rest = [s for s in candidates if s is not first]
        else:
            first, rest = candidates[0], candidates[1:]
        return ScopeDecision(
            True,
            first,
            first.constraints,
            f"{wanted} granted by {first.raw} on condition {_constraint_text(first.constraints)}",
            (first.constraints, *(s.constraints for s in rest)),
        )

    def _candidates(
        self, kinds: tuple[str, ...], resource_type: str, permission: str
    ) -> list[ResourceScope]:
        exact: list[ResourceScope] = []
        wild: list[ResourceScope] = []
        for kind in kinds:
            if resource_type != "*":
                exact.extend(self._index.get((kind, resource_type, permission), ()))
            wild.extend(self._index.get((kind, "*", permission), ()))
        return exact + wild


_PERMISSION_SET: Final = frozenset(PERMISSIONS)
_MAX_DECISIONS: Final = 64  # remembered per scope string (`ScopeSet.decision`)


def _constraint_text(constraints: Iterable[Constraint]) -> str:
    return "&".join(f"{k}={v}" for k, v in constraints)


def _parse_constraints(token: str, query: str) -> tuple[Constraint, ...]:
    if not query:
        raise ScopeError(token, "empty constraint after '?'")
    try:
        pairs = parse_qsl(
            query,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=_MAX_CONSTRAINTS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError
        raise ScopeError(token, f"malformed constraint: {exc}") from None
    for name, value in pairs:
        if not name:
            raise ScopeError(token, "constraint with an empty parameter name")
        if not value:
            raise ScopeError(token, f"constraint {name!r} has an empty value")
    return tuple(pairs)


def parse_scope(token: str) -> ResourceScope:
    """Parse one resource scope token; raises `ScopeError` (only) when it is not one."""
    if not isinstance(token, str):
        raise ScopeError(repr(token), "scope must be a string")
    if not _SCOPE_TOKEN.fullmatch(token):
        raise ScopeError(token, "empty, or a character not allowed in a scope token")
    head, qmark, query = token.partition("?")
    context_name, slash, rest = head.partition("/")
    if not slash:
        raise ScopeError(token, "not a resource scope (expected context/Type.permissions)")
    context = _CONTEXT_BY_NAME.get(context_name)
    if context is None:
        if context_name.lower() in _CONTEXT_BY_NAME:
            raise ScopeError(token, f"context must be lower-case {context_name.lower()!r}")
        raise ScopeError(token, f"unknown context {context_name!r} (patient, user or system)")
    resource_type, dot, perms = rest.partition(".")
    if not dot:
        raise ScopeError(token, "missing '.permissions'")
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        raise ScopeError(token, f"resource type {resource_type!r} is not '*' or a FHIR type name")
    v1 = _V1_PERMISSIONS.get(perms)
    if v1 is not None:
        if qmark:
            raise ScopeError(token, "constraints ('?...') are allowed on SMART v2 scopes only")
        return ResourceScope(context, resource_type, v1, (), 1, token)
    if not perms or not _V2_PERMISSIONS.fullmatch(perms):
        raise ScopeError(
            token, f"permissions {perms!r} are not read/write/* nor an in-order subset of 'cruds'"
        )
    constraints = _parse_constraints(token, query) if qmark else ()
    return ResourceScope(context, resource_type, frozenset(perms), constraints, 2, token)


def _looks_like_resource_scope(token: str) -> bool:
    context, slash, _ = token.partition("/")
    return bool(slash) and context.lower() in _CONTEXT_BY_NAME


def parse_scopes(scope_string: str) -> ScopeSet:
    """Parse a space-separated scope string (e.g. a token's `scope` claim). Never raises.

    Tokens are split on ASCII spaces, deduplicated keeping the first occurrence. Results are
    cached: the same granted scope string is parsed once per process.
    """
    if not isinstance(scope_string, str):
        return ScopeSet(invalid=(InvalidScope(repr(scope_string)[:120], "not a string"),))
    if len(scope_string) > _MAX_SCOPE_STRING:
        reason = f"scope string longer than {_MAX_SCOPE_STRING} characters"
        return ScopeSet(invalid=(InvalidScope(scope_string[:120], reason),))
    return _parse_scopes_cached(scope_string)


@lru_cache(maxsize=4096)
def _parse_scopes_cached(scope_string: str) -> ScopeSet:
    tokens = tuple(dict.fromkeys(t for t in scope_string.split(" ") if t))
    resource: list[ResourceScope] = []
    special: set[str] = set()
    unknown: list[str] = []
    invalid: list[InvalidScope] = []
    for token in tokens:
        if token in SPECIAL_SCOPES:
            special.add(token)
        elif _looks_like_resource_scope(token):
            try:
                resource.append(parse_scope(token))
            except ScopeError as exc:
                invalid.append(InvalidScope(token, exc.reason))
        elif _SCOPE_TOKEN.fullmatch(token):
            unknown.append(token)
        else:
            invalid.append(InvalidScope(token, "character not allowed in a scope token"))
    return ScopeSet(tuple(resource), frozenset(special), tuple(unknown), tuple(invalid), tokens)


def interaction_permission(interaction: str) -> Permission:
    """The SMART permission a FHIR interaction needs (`read` -> `r`, `search-type` -> `s`, ...).

    Interactions without a single permission (capabilities, batch/transaction, operations,
    smart-configuration) raise `ValueError`: the gateway decides those per entry or per operation.
    """
    try:
        return _INTERACTION_PERMISSION[interaction]
    except KeyError:
        raise ValueError(f"interaction {interaction!r} has no single SMART permission") from None
