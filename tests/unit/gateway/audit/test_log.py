"""AuditLog: nothing lost under concurrency or on shutdown, batches, resume, failures."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from gateway.audit import (
    AuditLog,
    BatchWriter,
    Encoded,
    WriteError,
    WriterClosedError,
    verify_chain,
)
from tests.unit.gateway.audit.helpers import record


def lines_of(path: Path) -> list[dict[str, object]]:
    """The complete lines of a log (one may be being written while a test polls)."""
    complete = path.read_bytes().split(b"\n")[:-1]
    return [json.loads(line) for line in complete]


@pytest.mark.anyio
async def test_ten_thousand_appends_from_a_hundred_tasks_are_ten_thousand_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, batch_size=128, flush_interval_s=0.01)

    async def client(task: int) -> None:
        for i in range(100):
            log.append(record(task * 100 + i, request_id=f"t{task}-{i}"))
            if i % 7 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(client(task) for task in range(100)))
    await log.aclose()
    entries = lines_of(path)
    assert len(entries) == 10_000
    assert [entry["seq"] for entry in entries] == list(range(10_000))
    assert len({entry["request_id"] for entry in entries}) == 10_000
    assert {entry["kind"] for entry in entries} == {"request"}
    report = verify_chain(path)
    assert report.ok and report.records == 10_000
    assert log.next_seq == 10_000 and log.head == report.head


@pytest.mark.anyio
async def test_per_task_order_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    async with AuditLog(path, batch_size=3) as log:

        async def client(task: int) -> None:
            for i in range(50):
                log.append(record(i, request_id=f"{task}:{i}"))
                await asyncio.sleep(0)

        await asyncio.gather(*(client(task) for task in range(4)))
    by_task: dict[str, list[int]] = {}
    for entry in lines_of(path):
        task, i = str(entry["request_id"]).split(":")
        by_task.setdefault(task, []).append(int(i))
    assert by_task == {str(task): list(range(50)) for task in range(4)}


@pytest.mark.anyio
async def test_a_full_batch_is_written_without_flush(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, batch_size=10, flush_interval_s=60)
    for i in range(25):
        log.append(record(i))
    for _ in range(1000):
        if len(lines_of(path)) >= 20:
            break
        await asyncio.sleep(0.005)
    assert len(lines_of(path)) == 20  # two full batches; five wait for the interval
    await log.aclose()
    assert len(lines_of(path)) == 25


@pytest.mark.anyio
async def test_a_partial_batch_is_written_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, batch_size=1000, flush_interval_s=0.02)
    log.append(record(0))
    for _ in range(1000):
        if path.stat().st_size:
            break
        await asyncio.sleep(0.005)
    assert len(lines_of(path)) == 1
    await log.aclose()


@pytest.mark.anyio
async def test_flush_writes_everything_appended_before_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, batch_size=1000, flush_interval_s=60)
    for i in range(7):
        log.append(record(i))
    await log.flush()
    assert len(lines_of(path)) == 7
    await log.aclose()


@pytest.mark.anyio
async def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    async with AuditLog(path) as first:
        for i in range(3):
            first.append(record(i))
    head = verify_chain(path).head
    async with AuditLog(path) as second:
        assert (second.next_seq, second.head) == (3, head)
        second.append(record(3))
        second.append_event("alert", {"id": "volume-1"})
    entries = lines_of(path)
    assert [entry["seq"] for entry in entries] == [0, 1, 2, 3, 4]
    assert entries[3]["prev"] == head
    assert verify_chain(path).ok


@pytest.mark.anyio
async def test_append_after_close_is_refused_and_close_is_idempotent(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(record(0))
    await log.aclose()
    await log.aclose()
    await log.flush()
    with pytest.raises(WriterClosedError):
        log.append(record(1))
    assert len(lines_of(tmp_path / "audit.jsonl")) == 1


def test_event_kinds_are_checked(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for bad in ("request", "", "Alert", "a b"):
        with pytest.raises(ValueError, match="kind"):
            log.append_event(bad, {})
    log.close()


@pytest.mark.anyio
async def test_a_failed_write_is_retried_in_order_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    calls = {"n": 0}

    def encode(batch: list[str]) -> Encoded:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full (simulated)")
        return Encoded("".join(f"{item}\n" for item in batch).encode(), lambda: None)

    writer: BatchWriter[str] = BatchWriter(path, encode, batch_size=100, retry_s=0.01)
    writer.put("a")
    writer.put("b")
    with pytest.raises(WriteError, match="disk full"):
        await writer.flush()  # the first attempt failed; the items are kept
    writer.put("c")
    await writer.flush()
    await writer.aclose()
    assert path.read_text().splitlines() == ["a", "b", "c"]
    assert writer.last_error is None and writer.written == 3


@pytest.mark.anyio
async def test_close_reports_entries_that_could_not_be_written(tmp_path: Path) -> None:
    def encode(batch: list[str]) -> Encoded:
        raise OSError("read-only file system (simulated)")

    writer: BatchWriter[str] = BatchWriter(tmp_path / "x.txt", encode, retry_s=0.01)
    writer.put("a")
    with pytest.raises(WriteError, match="1 entries pending"):
        await writer.aclose()


@pytest.mark.anyio
async def test_a_crashed_writer_thread_fails_loudly_instead_of_hanging(tmp_path: Path) -> None:
    def encode(batch: list[str]) -> Encoded:
        raise SystemExit("a bug escaping the encoder")

    writer: BatchWriter[str] = BatchWriter(tmp_path / "x.txt", encode, flush_interval_s=60)
    writer.put("a")
    with pytest.raises(WriteError, match="a bug escaping"):
        await writer.flush()
    with pytest.raises(WriterClosedError):
        writer.put("b")
    with pytest.raises(WriteError):
        await writer.aclose()


def test_the_log_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.jsonl"
    AuditLog(path).close()
    assert os.stat(path).st_mode & 0o077 == 0
