"""C10 on writes: the written resource is stamped with the token's tenant."""

from __future__ import annotations

import json

import pytest

from gateway.denial import Denial
from gateway.stages.tenant import TENANT_TAG_SYSTEM, stamp, tenant_of


def test_untagged_resource_is_stamped_and_other_tags_kept() -> None:
    body = json.dumps(
        {"resourceType": "Appointment", "meta": {"tag": [{"system": "x", "code": "y"}]}}
    ).encode()
    stamped = json.loads(stamp(body, "tenant-a"))
    assert tenant_of(stamped) == "tenant-a"
    assert {"system": "x", "code": "y"} in stamped["meta"]["tag"]


def test_same_tenant_is_untouched() -> None:
    body = json.dumps(
        {"resourceType": "Patient", "meta": {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "t"}]}}
    ).encode()
    assert stamp(body, "t") is body


def test_another_tenants_resource_is_refused() -> None:
    body = json.dumps(
        {"resourceType": "Patient", "meta": {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "b"}]}}
    ).encode()
    with pytest.raises(Denial) as caught:
        stamp(body, "a")
    assert caught.value.status == 403 and caught.value.control == "C10"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"no": "type"}'])
def test_non_resources_pass_unchanged(body: bytes) -> None:
    assert stamp(body, "a") == body
