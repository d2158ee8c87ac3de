"""Step types: a registry of frozen pydantic models, one per kind of client behaviour.

A step is one thing the client does; its `type` picks the model (default `request`). Every type
shares `name`, `weight`, `probes` and `remarks`; the replay engine interprets each type (see
docs/reference/scenarios.md). A new type is a model registered with `@step_type("name")`;
nothing else changes: the scenario model's `steps` union is built from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from simulator.scenarios.params import check_parameters
from simulator.scenarios.requests import RequestLine, parse_request
from simulator.scenarios.vocabulary import ControlId, Launch

if TYPE_CHECKING:
    from labcore.profiles import ClientProfile

STEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ,.'()/_+-]{0,79}$"
STEP_TYPES: dict[str, type[StepBase]] = {}


def step_type(name: str) -> Callable[[type[StepBase]], type[StepBase]]:
    """Register a step model under `name` (the value of `type:` in a file)."""

    def register(cls: type[StepBase]) -> type[StepBase]:
        if name in STEP_TYPES:
            raise ValueError(f"step type {name!r} is registered twice")
        cls.type_name = name
        STEP_TYPES[name] = cls
        return cls

    return register


class StepBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type_name: ClassVar[str] = ""

    name: str = Field(pattern=STEP_NAME)
    weight: int = Field(default=1, gt=0, description="relative frequency in the load run")
    probes: tuple[ControlId, ...] = Field(
        default=(), description="controls this step tests: it should be refused by them"
    )
    remarks: str | None = None

    def profile_problems(self, profile: ClientProfile, launch: Launch) -> list[tuple[str, str]]:
        """(field, message) for what this step cannot do with this client; none by default."""
        return []


def _request(text: str) -> str:
    parse_request(text)
    check_parameters(text)
    return text


class _HasRequest(StepBase):
    request: str

    @field_validator("request")
    @classmethod
    def _valid_request(cls, value: str) -> str:
        return _request(value)

    @property
    def request_line(self) -> RequestLine:
        return parse_request(self.request)


@step_type("request")
class RequestStep(_HasRequest):
    """One FHIR interaction: `request: GET Patient/{my_patient}` (+ `body:` or `form:`)."""

    type: Literal["request"] = "request"
    body: dict[str, Any] | None = Field(default=None, description="inline resource (POST, PUT)")
    form: dict[str, str] | None = Field(default=None, description="POST .../_search parameters")

    @field_validator("body", "form")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        return check_parameters(value)

    @model_validator(mode="after")
    def _body_fits_method(self) -> Self:
        line = parse_request(self.request)
        if self.body is not None and self.form is not None:
            raise ValueError("give either body or form, not both")
        if line.method in ("GET", "DELETE") and (self.body is not None or self.form is not None):
            raise ValueError(f"{line.method} takes no body or form")
        if line.method == "PUT" and self.body is None:
            raise ValueError("PUT needs a body (the resource)")
        if line.method == "POST" and self.body is None and self.form is None:
            raise ValueError("POST needs a body (a resource or Bundle) or a form (for _search)")
        if self.form is not None and not line.url.split("?")[0].endswith("_search"):
            raise ValueError("form is only for 'POST Type/_search'")
        return self


def _get_search(text: str) -> str:
    line = parse_request(_request(text))
    if line.method != "GET":
        raise ValueError(f"this step type repeats a GET; got {line.method}")
    return text


@step_type("export")
class ExportStep(StepBase):
    """Bulk export: kick off `Group/<group>/$export`, poll the status URL, download the files."""

    type: Literal["export"]
    group: str = "{my_group}"
    types: tuple[str, ...] = Field(default=(), description="_type filter; empty: everything")
    poll_interval_s: float = Field(default=2.0, gt=0)
    max_polls: int = Field(default=60, gt=0)
    download: bool = True

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        return str(check_parameters(value))

    @property
    def kickoff(self) -> RequestLine:
        query = f"?_type={','.join(self.types)}" if self.types else ""
        return RequestLine("GET", f"Group/{self.group}/$export{query}")


@step_type("page_walk")
class PageWalkStep(_HasRequest):
    """A search followed through its `next` links: `_count=<count>`, at most `max_pages` pages."""

    type: Literal["page_walk"]
    count: int = Field(default=1000, gt=0, description="_count asked on the first page")
    max_pages: int = Field(default=50, gt=0)

    @field_validator("request")
    @classmethod
    def _search(cls, value: str) -> str:
        return _get_search(value)


@step_type("refresh")
class RefreshStep(StepBase):
    """Exchange the refresh token for a new access token (in session)."""

    type: Literal["refresh"]

    def profile_problems(self, profile: ClientProfile, launch: Launch) -> list[tuple[str, str]]:
        if "refresh_token" in profile.grant_types and profile.refresh_tokens:
            return []
        return [
            (
                "type",
                f"client {profile.client_id} gets no refresh token (grant_types "
                f"{', '.join(profile.grant_types)}, refresh_tokens {profile.refresh_tokens})",
            )
        ]


@step_type("burst")
class BurstStep(_HasRequest):
    """The same request `times` times, `concurrency` at once (volume / off-hours detectors)."""

    type: Literal["burst"]
    times: int = Field(gt=0, le=100_000)
    concurrency: int = Field(default=1, gt=0, le=256)
    off_hours: bool = Field(default=False, description="stamp the burst as outside office hours")


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        tag = value.get("type", "request")
        return tag if isinstance(tag, str) else None
    return None


def step_union() -> Any:
    """The `steps` item type: a union of the registered models, picked by `type`."""
    members = tuple(Annotated[cls, Tag(name)] for name, cls in STEP_TYPES.items())
    return Annotated[Union[members], Discriminator(_tag)]  # noqa: UP007
