"""The job runner: durable work drained by workers in or beside the web process.

Handlers are registered per kind (``ap.deliver``, ``ap.inbound`` ...) by the
adapters at start-up. A handler returns a :class:`Outcome` or raises; the
runner turns that into the next state with the stated retry policy:

* ``done``, ``gone`` and ``failed`` are final;
* ``retry`` waits for the next step of ``Config.retry_schedule_s`` (with
  jitter, or the peer's ``Retry-After`` when that is longer) and gives up as
  ``failed`` when the schedule is exhausted;
* an exception that is a permanent :class:`HubError` fails the job; any other
  exception is retried, and logged.

Outcomes are written in batches (one transaction for many jobs) so a fan-out
of thousands of deliveries does not cost a commit each.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from hub.config import Config
from hub.db import Database
from hub.errors import FetchError, HubError
from hub.store import jobs as job_store
from hub.store.base import utcnow

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    state: str  # done | retry | failed | gone
    status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


DONE = Outcome("done")

Handler = Callable[[sa.Row], Awaitable[Outcome | None]]


class Registry:
    """Job kinds and their handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.periodic: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    def every(self, name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn()`` every ``periodic_s`` seconds in each job runner
        (work that is due by time rather than queued, such as snoozes ending).
        ``fn`` must be safe to run in several processes at once."""
        self.periodic.append((name, fn))

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} registered twice")
        self.handlers[kind] = handler


def next_state(cfg: Config, job: sa.Row, outcome: Outcome, *, now: dt.datetime, rng: random.Random) -> dict:
    """The row update for a job after an attempt (pure: the retry policy in one place)."""
    state = outcome.state
    next_try_at = now
    if state == "retry":
        schedule = cfg.retry_schedule_s
        step = job.attempts - 1  # attempts already counts this try
        if step >= len(schedule):
            state = "failed"
        else:
            wait = schedule[step]
            wait *= 1 + rng.uniform(-cfg.retry_jitter, cfg.retry_jitter)
            if outcome.retry_after_s is not None:
                # Honour a longer Retry-After, but not beyond our longest wait.
                wait = max(wait, min(outcome.retry_after_s, max(schedule)))
            next_try_at = now + dt.timedelta(seconds=max(wait, 0.0))
            state = "queued"
    error = outcome.error
    if error and len(error) > 1000:
        error = error[:1000]
    return {
        "id": job.id,
        "attempts": job.attempts,
        "state": state,
        "next_try_at": next_try_at,
        "last_status": outcome.status,
        "last_error": error,
    }


def outcome_of_exception(exc: BaseException) -> Outcome:
    if isinstance(exc, FetchError):
        return Outcome(
            "failed" if exc.permanent else "retry",
            status=exc.status_code,
            error=str(exc),
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, HubError):
        return Outcome("failed" if exc.permanent else "retry", error=str(exc))
    return Outcome("retry", error=f"{type(exc).__name__}: {exc}")


class Runner:
    """Claims ready jobs and runs them with bounded concurrency.

    At most ``worker_concurrency`` jobs run at once, and at most
    ``per_host_concurrency`` for one remote host (jobs carry their host);
    a host at its limit is left out of the next claim, so one slow peer
    cannot take every worker. Leases of running jobs are renewed while they
    run. ``wake()`` makes an idle runner look for work at once (the web
    process calls it after queueing); otherwise it polls every ``job_poll_s``.
    """

    def __init__(
        self,
        cfg: Config,
        db: Database,
        registry: Registry,
        *,
        concurrency: int | None = None,
        rng: random.Random | None = None,
    ):
        self.cfg = cfg
        self.db = db
        self.registry = registry
        self.concurrency = concurrency or cfg.worker_concurrency
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._results: list[dict] = []
        self._results_ready = asyncio.Event()
        self._inflight: dict[asyncio.Task, sa.Row] = {}
        self._hosts: collections.Counter[str] = collections.Counter()
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._flush_failures = 0
        self.errors: list[BaseException] = []

    def wake(self) -> None:
        self._wake.set()

    def _busy_hosts(self) -> list[str]:
        limit = self.cfg.per_host_concurrency
        return [h for h, n in self._hosts.items() if n >= limit]

    async def _claim(self, limit: int) -> list[sa.Row]:
        now, kinds, busy = utcnow(), tuple(self.registry.handlers), self._busy_hosts()
        return await self.db.run_write(
            lambda conn: job_store.claim_jobs(
                conn, now=now, lease_s=self.cfg.job_lease_s, limit=limit, kinds=kinds, exclude_hosts=busy
            ),
            inline=True,
        )

    def _start(self, job: sa.Row, *, raise_errors: bool) -> asyncio.Task:
        # Count the host as busy from the moment of the claim, so the next
        # claim already leaves a saturated host out.
        if job.host:
            self._hosts[job.host] += 1
        task = asyncio.create_task(self._run_one(job, raise_errors=raise_errors))
        self._inflight[task] = job
        task.add_done_callback(self._done)
        return task

    async def _run_one(self, job: sa.Row, *, raise_errors: bool) -> None:
        host = job.host
        if host:
            sem = self._host_limits.setdefault(host, asyncio.Semaphore(self.cfg.per_host_concurrency))
        try:
            if host:
                async with sem:
                    result = await self._attempt(job, raise_errors=raise_errors)
            else:
                result = await self._attempt(job, raise_errors=raise_errors)
        finally:
            if host:
                self._hosts[host] -= 1
                if self._hosts[host] <= 0:
                    del self._hosts[host]
                    if not sem.locked():
                        self._host_limits.pop(host, None)
        self._results.append(result)
        self._results_ready.set()

    async def _attempt(self, job: sa.Row, *, raise_errors: bool) -> dict:
        handler = self.registry.handlers[job.kind]
        started = time.monotonic()
        try:
            outcome = await handler(job) or DONE
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the policy decides; nothing escapes a worker
            outcome = outcome_of_exception(exc)
            if raise_errors:
                self.errors.append(exc)
            if not isinstance(exc, HubError):
                log.exception("job %s (%s) crashed", job.id, job.kind)
            else:
                log.info("job %s (%s) failed: %s", job.id, job.kind, exc)
        result = next_state(self.cfg, job, outcome, now=utcnow(), rng=self.rng)
        result["duration_ms"] = int((time.monotonic() - started) * 1000)
        return result

    async def _flush(self) -> None:
        """Record outcomes, oldest first. A batch that cannot be written stays
        queued (the caller retries); after a few failed tries its results are
        written one by one, so one bad row cannot hold back the others, and a
        result that cannot be written even alone is dropped and its job, still
        leased, runs again when the lease ends."""
        while self._results:
            batch = self._results[:500]
            try:
                await self.db.run_write(lambda conn, batch=batch: job_store.finish_jobs(conn, batch), inline=True)
            except Exception:
                self._flush_failures += 1
                if self._flush_failures < 3:
                    raise
                for result in batch:
                    try:
                        await self.db.run_write(lambda conn, r=result: job_store.finish_jobs(conn, [r]), inline=True)
                    except Exception:
                        log.exception("dropping the outcome of job %s; it runs again after its lease", result["id"])
            self._flush_failures = 0
            del self._results[: len(batch)]

    async def _writer(self) -> None:
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("could not record job outcomes; retrying")
                await asyncio.sleep(0.5)
                self._results_ready.set()

    async def _heartbeat(self) -> None:
        interval = max(self.cfg.job_lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            ids = [job.id for job in self._inflight.values()]
            if not ids:
                continue
            until = utcnow() + dt.timedelta(seconds=self.cfg.job_lease_s)
            try:
                await self.db.run_write(lambda conn, ids=ids, until=until: job_store.extend_leases(conn, ids, until=until), inline=True)
            except Exception:
                log.exception("could not renew job leases")

    async def _periodic(self) -> None:
        while True:
            for name, fn in self.registry.periodic:
                try:
                    await fn()
                except Exception:
                    log.exception("periodic task %s failed", name)
            await asyncio.sleep(self.cfg.periodic_s)

    async def run(self) -> None:
        """Work until cancelled."""
        helpers = [asyncio.create_task(self._writer()), asyncio.create_task(self._heartbeat()),
                   asyncio.create_task(self._periodic())]
        try:
            while True:
                free = self.concurrency - len(self._inflight)
                claimed: list[sa.Row] = []
                # While busy, claim only once a quarter of the slots is free:
                # one transaction per batch of jobs, not one per finished job.
                if free > 0 and (free >= max(1, self.concurrency // 4) or len(self._inflight) < self.concurrency // 2):
                    try:
                        claimed = await self._claim(free)
                    except Exception:
                        log.exception("could not claim jobs")
                for job in claimed:
                    self._start(job, raise_errors=False)
                if claimed and len(claimed) == free:
                    await asyncio.sleep(0)
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.cfg.job_poll_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            try:
                await self._flush()
            except Exception:
                log.exception("could not record job outcomes at shutdown")

    def _done(self, task: asyncio.Task) -> None:
        self._inflight.pop(task, None)
        self._wake.set()

    async def drain(self, *, raise_errors: bool = True, max_rounds: int = 1000) -> int:
        """Run every job that is ready now, and those they queue, until none is.

        For tests and one-shot commands. With ``raise_errors`` the first
        exception a handler raised is re-raised after the round.
        """
        ran = 0
        for _ in range(max_rounds):
            claimed = await self._claim(self.concurrency)
            if not claimed:
                break
            await asyncio.gather(*(self._start(j, raise_errors=raise_errors) for j in claimed))
            ran += len(claimed)
            await self._flush()
            if raise_errors and self.errors:
                exc, self.errors = self.errors[0], []
                raise exc
        return ran


async def queue(db: Database, rows: list[dict], runner: Any = None) -> list[str]:
    """Queue job rows in their own transaction and wake the local runner."""
    async with db.write() as conn:
        ids = await job_store.put_jobs(conn, rows)
    if runner is not None:
        runner.wake()
    return ids
