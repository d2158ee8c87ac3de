"""What `gateway/fhir_endpoint.py` makes of a request before the stages: its context and id."""

from __future__ import annotations

import os
import re

from gateway.fhir_endpoint import new_context, new_request_id
from gateway.proxy import RequestHead


def scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/fhir/Patient/p1",
        "raw_path": b"/fhir/Patient/p1",
        "query_string": b"",
        "headers": list(headers),
    }


def test_request_ids_are_16_hex_digits_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_client_request_id_is_kept_and_others_get_a_fresh_one() -> None:
    own = scope((b"x-request-id", b"client-42"))
    assert new_context(own, RequestHead.of(own)).request_id == "client-42"
    bare = scope()
    first, second = (new_context(bare, RequestHead.of(bare)).request_id for _ in range(2))
    assert first != second


def test_a_forked_worker_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running anything else
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{16}", child)
    assert child != new_request_id()
