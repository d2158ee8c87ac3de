"""Batched, append-only line writing on one dedicated thread (used by the audit log and alerts).

`put()` is the hot path: one `SimpleQueue.put` (O(1), never blocks, callable from the event loop
or any thread). The writer thread does not wake per item: it sleeps until a batch is due — when
`batch_size` items are waiting or `flush_interval_s` after the first item of a batch, whichever
comes first, or at once for `flush()` / `aclose()` — then drains what is queued, encodes it (the
encoder runs on the writer thread, off the event loop), and appends the bytes with one `os.write`
loop on an `O_APPEND` descriptor. `put` wakes it only for the first item after an idle spell and
for a full batch, so a steady stream of items costs one wake-up per interval, not one per item.
The encoder's `commit` runs only once the bytes are on disk; a failed write is truncated away and
retried every `retry_s` with the same items in front, so nothing is written twice or out of order.

`flush()` returns once everything `put` before it is written; `aclose()` flushes and stops the
thread. Entries still queued when a process dies without `aclose()` are lost (the thread is a
daemon so it never blocks interpreter exit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

__all__ = ["BatchWriter", "Encoded", "WriteError", "WriterClosedError"]

T = TypeVar("T")


class WriterClosedError(RuntimeError):
    """`put` after `aclose()`: the entry would be lost, so it is refused loudly."""


class WriteError(OSError):
    """Entries could not be written (disk full, permissions, ...); `pending` were kept."""

    def __init__(self, path: Path, pending: int, cause: BaseException) -> None:
        super().__init__(f"cannot append to {path} ({pending} entries pending): {cause}")
        self.path = path
        self.pending = pending
        self.cause = cause


class Encoded(NamedTuple):
    """An encoded batch: the bytes to append, and what to do once they are written."""

    data: bytes
    commit: Callable[[], None]


@dataclass(slots=True)
class _Marker:
    future: concurrent.futures.Future[None]
    stop: bool


def _settle(future: concurrent.futures.Future[None], error: BaseException | None) -> None:
    """Answer a marker once (from whichever thread gets there first)."""
    with contextlib.suppress(RuntimeError, concurrent.futures.InvalidStateError):
        if future.set_running_or_notify_cancel():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


async def _wait(future: concurrent.futures.Future[None]) -> None:
    # shielded: a cancelled waiter must not cancel the writer thread's future
    await asyncio.shield(asyncio.wrap_future(future))


class BatchWriter(Generic[T]):
    """Append encoded batches of `T` to `path` from a dedicated thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        encode: Callable[[list[T]], Encoded],
        *,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        fsync: bool = False,
        retry_s: float = 1.0,
        name: str = "batch-writer",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.path = Path(path)
        self._encode = encode
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._fsync = fsync
        self._retry_s = retry_s
        self._queue: queue.SimpleQueue[T | _Marker] = queue.SimpleQueue()
        self._closed = False
        self._stopped: concurrent.futures.Future[None] | None = None
        self.written = 0
        self.last_error: WriteError | None = None
        self._crashed: WriteError | None = None
        self._waiting: list[_Marker] = []  # markers taken off the queue, not yet answered
        # set to wake the writer thread early; `_idle` while it sleeps with nothing queued
        self._wake = threading.Event()
        self._idle = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> None:
        """Queue one item; O(1), never blocks. Raises `WriterClosedError` after `aclose()`."""
        if self._closed:
            raise WriterClosedError(f"{self.path} is closed; the entry was not recorded")
        items = self._queue
        items.put(item)
        # the put comes first: the writer marks itself idle before it looks at the queue, so
        # either it sees this item or this sees it idle
        if self._idle or items.qsize() >= self._batch_size:
            self._idle = False
            self._wake.set()

    async def flush(self) -> None:
        """Return once every item put before this call is written (raises `WriteError`)."""
        if self._crashed is not None:
            raise self._crashed
        if self._closed:
            if self._stopped is not None:
                await _wait(self._stopped)
            return
        await _wait(self._mark(stop=False))

    async def aclose(self) -> None:
        """Write everything queued, close the file and stop the thread (idempotent)."""
        if self._stopped is None:
            self._closed = True
            self._stopped = self._mark(stop=True)
        await _wait(self._stopped)
        await asyncio.to_thread(self._thread.join)

    def close(self) -> None:
        """Blocking `aclose()`, for code without an event loop."""
        if self._stopped is None:
            self._closed = True
            self._stopped = self._mark(stop=True)
        self._thread.join()
        self._stopped.result()

    def _mark(self, *, stop: bool) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._crashed is None:
            self._queue.put(_Marker(future, stop))
            self._wake.set()
        if self._crashed is not None:  # crashed before or while queueing: answer it here
            _settle(future, self._crashed)
        return future

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug here must not leave flush()/aclose() hanging
            self._crashed = self.last_error = WriteError(self.path, self._queue.qsize(), exc)
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)
            markers = list(self._waiting)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Marker):
                    markers.append(item)
            for marker in markers:
                _settle(marker.future, self._crashed)

    def _loop(self) -> None:
        batch: list[T] = []
        waiting = self._waiting
        deadline = 0.0
        while True:
            self._wake.clear()  # before draining: a put after the drain wakes the wait below
            deadline = self._drain(batch, waiting, deadline)
            now = time.monotonic()
            if not waiting and len(batch) < self._batch_size and not (batch and now >= deadline):
                if batch:
                    self._wake.wait(deadline - now)
                else:
                    self._idle = True
                    if self._queue.empty():
                        self._wake.wait()
                    self._idle = False
                continue
            error = self._write(batch)
            stop = any(marker.stop for marker in waiting)
            for marker in waiting:
                _settle(marker.future, error)
            waiting.clear()
            if stop:
                os.close(self._fd)
                return
            if error is None:
                batch = []
            else:
                time.sleep(self._retry_s)
                deadline = time.monotonic()

    def _drain(self, batch: list[T], waiting: list[_Marker], deadline: float) -> float:
        """Move queued items into `batch` (up to `batch_size`) and markers into `waiting`; the
        batch's deadline (`flush_interval_s` after its first item)."""
        items = self._queue
        while len(batch) < self._batch_size:
            try:
                item = items.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                waiting.append(item)
                continue
            if not batch:
                deadline = time.monotonic() + self._interval
            batch.append(item)
        return deadline

    def _write(self, batch: list[T]) -> WriteError | None:
        if not batch:
            return None
        try:
            encoded = self._encode(batch)
        except Exception as exc:  # an encoder bug must not drop entries silently
            return self._failed(batch, exc)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(encoded.data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            return self._failed(batch, exc)
        encoded.commit()
        self.written += len(batch)
        self.last_error = None
        return None

    def _failed(self, batch: list[T], exc: BaseException) -> WriteError:
        self.last_error = WriteError(self.path, len(batch), exc)
        return self.last_error
