"""Fault soak: many linked accounts over several simulated nights against the sandbox bank with 10 %
injected faults (5xx, timeouts beyond the client's timeout, 429 with Retry-After) plus scripted PSUs
(consents expired at the bank, consents expiring here, malformed pages, vanished accounts, a flapping
backend), synced by the REAL arq worker in a subprocess that is SIGKILLed mid-night and replaced; the
stale-run recovery of ``sync.schedule_due`` picks up what the dead worker held.

Invariants, against the sandbox's ground truth (:func:`ledgerlink.sandbox.bank_data.sandbox_transactions`):
every account ends synced or in a documented flagged state; zero duplicate and zero missing transactions;
the PSD2 allowance (4 unattended reads per account, endpoint and 24 h) never exceeded, by our ledger and by
the bank's own counters; no token, consent id or secret in any log line.

Size: 500 accounts, the initial import and 2 nights (CI); 2,000 accounts and 4 nights with
``LEDGERLINK_SOAK=full``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.jobs import deserialize_result
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Message, Receive, Scope, Send

from ledgerlink.banks.adapters.base import STOCKHOLM, BookingStatus
from ledgerlink.banks.service import load_credentials
from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ImportedTransaction,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    Todo,
    UnattendedRead,
)
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.bank_data import sandbox_transactions
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.cron import SLOT_SECONDS, SLOTS_PER_PASS, schedule_due_accounts, sweep_consents
from ledgerlink.sync.service.lock import lock_key
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.runner import ArqDispatcher
from ledgerlink.worker.settings import load_all_tasks
from tests.resilience.conftest import FULL, OUTPUT_DIR
from tests.resilience.procs import Proc, free_port, serve, service_env, start_worker
from tests.sync.factories import SimClock, make_account, make_company

pytestmark = pytest.mark.resilience

N_ACCOUNTS = int(os.environ.get("LEDGERLINK_SOAK_ACCOUNTS", 2000 if FULL else 500))
NIGHTS = 4 if FULL else 2
KILL_NIGHT = 2
FAULT_RATE = 0.1
LOCK_TTL = 6
DAY0 = dt.date(2026, 3, 2)
#: every 50th account is scripted; the rest are ordinary PSUs
SCRIPTED = ["expired", "malformed", "vanishing", "flaky", "expiring"]
#: Nothing moving for this long is a stall: the fan-out paces a bank's accounts SLOT_SECONDS apart (wall
#: clock) and a job finding its account locked tries again LOCK_BUSY_RETRY_SECONDS later, so a quiet
#: half-minute is no stall on a loaded machine (CI runs this beside the rest of the suite).
STALL_SECONDS = 3 * SLOT_SECONDS
#: The next cron pass after the kill, on the service clock: every run the dead worker held is stale by
#: then, also one the night's pass paced to its last slot (its next_attempt_at, plus a lock TTL).
RECOVERY_PASS_AFTER = dt.timedelta(seconds=SLOTS_PER_PASS * SLOT_SECONDS + LOCK_TTL)


class ExceededCounter:
    """ASGI wrapper counting the bank's own allowance refusals (429 'frequencyPerDay exceeded')."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exceeded = 0
        self.calls = 0
        self.refused: list[str] = []  # what the bank refused, for the failure message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.calls += 1
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and status == 429
                and b"frequencyPerDay exceeded" in message.get("body", b"")
            ):
                self.exceeded += 1
                headers = {k.decode().lower() for k, _ in scope.get("headers", [])}
                self.refused.append(
                    f"{scope['path']}?{scope.get('query_string', b'').decode()} "
                    f"{'attended' if 'psu-ip-address' in headers else 'unattended'}"
                )
            await send(message)

        await self.app(scope, receive, watch)


def kind_of(i: int) -> str:
    return SCRIPTED[(i // 50) % len(SCRIPTED)] if i % 50 == 7 else "ordinary"


async def active_runs(sessionmaker: Any) -> int:
    async with sessionmaker() as s:
        q = select(func.count()).where(SyncRun.status.in_([SyncStatus.queued, SyncStatus.running]))
        return int((await s.execute(q)).scalar_one())


async def progress(sessionmaker: Any) -> tuple[int, int]:
    """How many runs are queued or running, and how many claims all runs have had (a retry is progress)."""
    async with sessionmaker() as s:
        q = select(
            func.count().filter(SyncRun.status.in_([SyncStatus.queued, SyncStatus.running])),
            func.coalesce(func.sum(SyncRun.attempts), 0),
        )
        active, claims = (await s.execute(q)).one()
        return int(active), int(claims)


async def finished_since(sessionmaker: Any, at: dt.datetime) -> int:
    async with sessionmaker() as s:
        q = select(func.count()).where(SyncRun.finished_at >= at, SyncRun.status == SyncStatus.succeeded)
        return int((await s.execute(q)).scalar_one())


async def settle(
    sessionmaker: Any, *, stall_seconds: float = STALL_SECONDS, limit_seconds: float = 900.0
) -> int:
    """Wait until no run is queued or running; returns how many still are when nothing moved (no run
    finished, claimed or retried) for ``stall_seconds``."""
    started = time.monotonic()
    last, last_change = (-1, -1), time.monotonic()
    while time.monotonic() - started < limit_seconds:
        now = await progress(sessionmaker)
        if now[0] == 0:
            return 0
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > stall_seconds:
            return now[0]
        await asyncio.sleep(0.3)
    return await active_runs(sessionmaker)


def worker_log_lines(logs: Path) -> dict[str, list[str]]:
    """The workers' log lines naming a run, by run id."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for path in sorted(logs.iterdir()):
        for line in path.read_text(errors="replace").splitlines():
            if found := re.search(r'"run_id": "([0-9a-f-]{36})"', line):
                by_run[found.group(1)].append(f"{path.name}: {line[:300]}")
    return by_run


async def describe_jobs(redis: Any, queue_name: str, run_id: uuid.UUID) -> list[tuple[str, str]]:
    """Each arq job of a run (its first job and any re-sent one): (state, description)."""
    ids = {
        key.decode().split(":", 2)[2]
        for pattern in ("arq:job:", "arq:result:")
        for key in await redis.keys(f"{pattern}sync.account:{run_id}*")
    }
    jobs = []
    for job_id in sorted(ids):
        score = await redis.zscore(queue_name, job_id)
        in_progress_ms = await redis.pttl(f"arq:in-progress:{job_id}")
        raw = await redis.get(f"arq:result:{job_id}")
        result = None
        if raw is not None:
            done = deserialize_result(raw)
            result = f"{'ok' if done.success else 'failed'}:{done.result!r} try={done.job_try}"
        if in_progress_ms > 0:
            state = "in-progress"
        elif score is not None:
            state = "queued"
        else:
            state = "finished" if raw is not None else "gone"
        due = None if score is None else round(score / 1000 - time.time(), 1)
        tries = await redis.get(f"arq:retry:{job_id}")
        jobs.append(
            (
                state,
                f"job {job_id}: due in {due} s, in progress for {in_progress_ms} ms more, tries {tries!r}, "
                f"result {result}",
            )
        )
    return jobs


async def unfinished_report(sessionmaker: Any, redis: Any, queue_name: str, logs: Path) -> str:
    """The queued and running runs, for a failure message: how many of each kind (run status, the account's
    lock, the state of the run's arq jobs), then up to three of each kind with the run, its lock, its jobs
    (queue score, in-progress key, tries, result) and the worker log lines naming it."""
    active = SyncRun.status.in_([SyncStatus.queued, SyncStatus.running])
    async with sessionmaker() as s:
        runs = (await s.execute(select(SyncRun).where(active))).scalars().all()
    log_lines = worker_log_lines(logs)
    kinds: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        holder = await redis.get(lock_key(run.account_id))
        jobs = await describe_jobs(redis, queue_name, run.id)
        lines = [
            f"run {run.id} account {run.account_id}: {run.status.value} attempts={run.attempts} "
            f"error={run.error_code} created={run.created_at} started={run.started_at} "
            f"next_attempt_at={run.next_attempt_at}; lock holder {holder!r}, "
            f"expires in {await redis.pttl(lock_key(run.account_id))} ms",
            *(f"  {described}" for _, described in jobs),
            *(f"  {line}" for line in log_lines.get(str(run.id), [])),
        ]
        kind = f"{run.status.value}, lock {'held' if holder else 'free'}, jobs {[state for state, _ in jobs]}"
        kinds[kind].append("\n".join(lines))
    out = [f"{len(described)} x {kind}" for kind, described in kinds.items()]
    for described in kinds.values():
        out.extend(described[:3])
    return "\n".join(out)


def describe_runs(runs: list[SyncRun]) -> str:
    return "; ".join(
        f"{r.id} {r.trigger.value} {r.status.value} error={r.error_code} attempts={r.attempts} "
        f"created={r.created_at:%d %H:%M:%S} started={r.started_at and f'{r.started_at:%d %H:%M:%S}'} "
        f"finished={r.finished_at and f'{r.finished_at:%d %H:%M:%S}'} window={r.window_from}..{r.window_to} "
        f"fetched={r.fetched} inserted={r.inserted} updated={r.updated} removed={r.removed}"
        for r in runs
    )


def allowance_violations(reads: list[tuple[uuid.UUID, str, dt.datetime]], per_day: int) -> list[str]:
    by_key: dict[tuple[uuid.UUID, str], list[dt.datetime]] = defaultdict(list)
    for account_id, endpoint, at in reads:
        by_key[(account_id, endpoint)].append(at)
    bad = []
    for key, times in by_key.items():
        times.sort()
        for i in range(len(times) - per_day):
            if times[i + per_day] - times[i] < dt.timedelta(hours=24):
                bad.append(f"{key}: {per_day + 1} reads within 24 h from {times[i].isoformat()}")
    return bad


async def test_fault_soak_with_a_killed_worker(
    settings: Settings, sessionmaker: Any, arq_redis: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sim = SimClock()
    sim.set_local(DAY0, 14)
    clock_file = tmp_path / "clock"
    clock_file.write_text(sim.at.isoformat())

    def set_time(at: dt.datetime) -> None:
        """Move both clocks; the worker reads the file at any moment, so it is replaced, never truncated."""
        sim.at = at
        staged = clock_file.with_suffix(".new")
        staged.write_text(at.isoformat())
        staged.replace(clock_file)

    settings.sync.per_bank_concurrency = 100
    settings.sync.lock_ttl_seconds = LOCK_TTL
    load_all_tasks()
    set_dispatcher(ArqDispatcher(arq_redis, queue_name=settings.queue_name))
    services = ServiceEnv(settings=settings, sessionmaker=sessionmaker, clock=sim, redis=arq_redis)

    bank_app = create_sandbox_bank_app(
        clock=sim.bank_today, fault_rate=0.0, seed=1234, fault_timeout_seconds=2.5, slow_seconds=0.0
    )
    bank = bank_app.state.bank  # type: ignore[attr-defined]
    counter = ExceededCounter(Starlette(routes=[Mount("/sandbox/bank", app=bank_app)]))
    port = free_port()
    env = service_env(
        settings,
        LEDGERLINK_SANDBOX="true",
        LEDGERLINK_BANKS__SANDBOX__BASE_URL=f"http://127.0.0.1:{port}/sandbox/bank",
        LEDGERLINK_BANKS__SANDBOX__TIMEOUT_SECONDS="1.5",
        LEDGERLINK_SYNC__PER_BANK_CONCURRENCY="100",
        LEDGERLINK_SYNC__LOCK_TTL_SECONDS=str(LOCK_TTL),
        LEDGERLINK_SYNC__BACKOFF_BASE_SECONDS="0.2",
        LEDGERLINK_SYNC__BACKOFF_MAX_SECONDS="1.0",
        LEDGERLINK_TEST_CLOCK_FILE=str(clock_file),
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    workers: list[Proc] = []
    stats: dict[str, Any] = {"accounts": N_ACCOUNTS, "nights": NIGHTS, "fault_rate": FAULT_RATE}
    soak_started = time.monotonic()
    try:
        async with serve(counter, port):
            # ---- accounts: real consents from the (fault-free while onboarding) sandbox bank
            onboarding = httpx.ASGITransport(app=counter)
            kinds: dict[uuid.UUID, str] = {}
            accounts: list[BankAccount] = []

            async def onboard(i: int) -> None:
                kind = kind_of(i)
                company_id = uuid.uuid4()
                await make_company(sessionmaker, company_id)
                psu = f"{kind}-{i}" if kind in ("malformed", "vanishing", "flaky") else f"co{i}"
                account = await make_account(
                    sessionmaker,
                    settings,
                    onboarding,
                    company_id,
                    psu=psu,
                    kind="gone" if kind == "vanishing" else "ftg",
                    sync_from=DAY0 - dt.timedelta(days=30),
                    clock=sim,
                    consent_expires_at=sim.at + dt.timedelta(days=1, hours=12)
                    if kind == "expiring"
                    else None,
                )
                kinds[account.id] = kind
                accounts.append(account)

            for start in range(0, N_ACCOUNTS, 25):
                await asyncio.gather(*(onboard(i) for i in range(start, min(start + 25, N_ACCOUNTS))))
            stats["onboarding_seconds"] = round(time.monotonic() - soak_started, 1)
            # "expired": the bank ends these consents after the first night (validUntil passes)
            async with sessionmaker() as s:
                for account in accounts:
                    if kinds[account.id] == "expired":
                        connection = await s.get(BankConnection, account.connection_id)
                        assert connection is not None
                        consent_id = load_credentials(settings, connection).consent_id
                        bank.consents[consent_id].valid_until = DAY0 + dt.timedelta(days=1)
            bank.fault_rate = FAULT_RATE

            workers.append(start_worker(env, logs / "worker-1.log"))
            # ---- day 0: the initial imports (user present), under faults
            async with session_scope(sessionmaker) as s:
                for account in accounts:
                    # as the confirmation request queues it: with the user's address, so the bank counts
                    # these reads as attended (without it they would spend the day's unattended reads)
                    await schedule_sync(
                        s,
                        account,
                        trigger=SyncTrigger.initial,
                        user_present=True,
                        psu_ip_address="192.0.2.10",
                        clock=sim,
                    )
            stuck = await settle(sessionmaker)
            assert stuck == 0, f"{stuck} initial runs never finished\n" + await unfinished_report(
                sessionmaker, arq_redis, settings.queue_name, logs
            )

            per_night: list[dict[str, Any]] = []
            for night in range(1, NIGHTS + 1):
                day = DAY0 + dt.timedelta(days=night)
                night_started = sim.at
                set_time(dt.datetime.combine(day, dt.time(5, 30 + night), STOCKHOLM).astimezone(dt.UTC))
                night_started = sim.at
                await sweep_consents(services)
                scheduled = await schedule_due_accounts(services)
                killed = False
                if night == KILL_NIGHT:
                    # SIGKILL the worker once a quarter of the night's runs are through
                    while await finished_since(sessionmaker, night_started) < scheduled // 4:
                        assert workers[-1].alive(), workers[-1].log.read_text()[-3000:]
                        await asyncio.sleep(0.05)
                    workers[-1].kill()
                    killed_at = time.monotonic()
                    killed = True
                    held = await active_runs(sessionmaker)
                    workers.append(start_worker(env, logs / f"worker-{len(workers) + 1}.log"))
                stuck = await settle(sessionmaker, stall_seconds=LOCK_TTL + 3 if killed else STALL_SECONDS)
                recovered = 0
                if stuck:
                    assert killed, f"night {night}: {stuck} runs stuck without a killed worker\n" + (
                        await unfinished_report(sessionmaker, arq_redis, settings.queue_name, logs)
                    )
                    # the dead worker's locks expire (real time), its runs go stale (service time)
                    await asyncio.sleep(max(0.0, LOCK_TTL + 1 - (time.monotonic() - killed_at)))
                    set_time(sim.at + RECOVERY_PASS_AFTER)
                    await schedule_due_accounts(services)  # the cron pass: stale-run recovery first
                    stuck = await settle(sessionmaker)
                    recovered = held
                assert stuck == 0, f"night {night}: {stuck} runs never finished\n" + await unfinished_report(
                    sessionmaker, arq_redis, settings.queue_name, logs
                )
                async with sessionmaker() as s:
                    reads = (
                        await s.execute(
                            select(UnattendedRead.account_id, UnattendedRead.endpoint, UnattendedRead.read_at)
                        )
                    ).all()
                    tonight = Counter(
                        (r.status.value, r.error_code)
                        for r in (
                            await s.execute(select(SyncRun).where(SyncRun.created_at >= night_started))
                        ).scalars()
                    )
                violations = allowance_violations(
                    [(r[0], r[1], r[2]) for r in reads], settings.sync.unattended_reads_per_day
                )
                assert violations == [], violations[:10]
                per_night.append(
                    {
                        "night": night,
                        "scheduled": scheduled,
                        "killed_worker": killed,
                        "runs_held_by_dead_worker": recovered,
                        "runs": {f"{k[0]}:{k[1] or ''}": v for k, v in sorted(tonight.items())},
                    }
                )
            stats["nights_detail"] = per_night
            today = sim.bank_today()
            final_night = night_started
    finally:
        for w in workers:
            if w.alive():
                w.stop()

    # ---- invariants
    async with sessionmaker() as s:
        all_accounts = {a.id: a for a in (await s.execute(select(BankAccount))).scalars()}
        connections = {c.id: c for c in (await s.execute(select(BankConnection))).scalars()}
        open_todos = {
            (t.company_id, t.type, t.subject_key)
            for t in (await s.execute(select(Todo).where(Todo.resolved_at.is_(None)))).scalars()
        }
        runs_by_account: dict[uuid.UUID, list[SyncRun]] = defaultdict(list)
        for run in (await s.execute(select(SyncRun).order_by(SyncRun.created_at))).scalars():
            runs_by_account[run.account_id].append(run)
        dupes = (
            await s.execute(
                select(ImportedTransaction.account_id, ImportedTransaction.provider_id, func.count())
                .group_by(ImportedTransaction.account_id, ImportedTransaction.provider_id)
                .having(func.count() > 1)
            )
        ).all()
        rows_by_account: dict[uuid.UUID, list[ImportedTransaction]] = defaultdict(list)
        for row in (await s.execute(select(ImportedTransaction))).scalars():
            rows_by_account[row.account_id].append(row)
    assert len(all_accounts) == N_ACCOUNTS
    assert dupes == [], f"duplicate transactions: {dupes[:10]}"

    outcome: Counter[str] = Counter()
    problems: list[str] = []
    for account_id, account in all_accounts.items():
        kind = kinds[account_id]
        connection = connections[account.connection_id]
        last = runs_by_account[account_id][-1]
        sid = str(account_id)
        if account.status == AccountStatus.reauth_required:
            state = "reauth_required"
            if (account.company_id, "reauth_required", str(connection.id)) not in open_todos:
                problems.append(f"{kind} {sid}: reauth_required without its to-do")
        elif account.status == AccountStatus.paused:
            state = "paused"
            if (account.company_id, "sync_failed", sid) not in open_todos:
                problems.append(f"{kind} {sid}: paused without a to-do")
        elif last.status == SyncStatus.succeeded:
            state = "synced"
        elif last.status == SyncStatus.deferred:
            state = "deferred"
            if last.next_attempt_at is None:
                problems.append(f"{kind} {sid}: deferred without next_attempt_at")
        elif last.status == SyncStatus.queued and last.next_attempt_at is not None and last.error_code:
            # a deferred run whose job woke after the last settle, failed transiently and now waits for its
            # backoff retry (the stopped worker's job stays in Redis for the next worker): transient
            state = "retrying"
        elif last.status == SyncStatus.failed:
            state = f"failed:{last.error_code}"
            if (account.company_id, "sync_failed", sid) not in open_todos:
                problems.append(f"{kind} {sid}: failed ({last.error_code}) without a sync_failed to-do")
        else:
            state = f"UNSETTLED:{last.status.value}"
            problems.append(f"{kind} {sid}: last run {last.status.value}")
        outcome[f"{kind}:{state}"] += 1
        expected = {
            "expired": {"reauth_required"},
            "expiring": {"reauth_required"},
            "vanishing": {"paused"},
            "malformed": {"failed:invalid_response"},
        }.get(kind)
        transient = {"deferred", "retrying", "failed:temporary_failure", "failed:bank_unavailable"}
        if expected is not None and state not in expected | transient:
            problems.append(f"{kind} {sid}: ended {state}, expected {expected}")

        rows = rows_by_account[account_id]
        # Synced through today on the final night: all of the bank's rows, as of today. (A run whose last
        # attempt was claimed the night before, as the clock moved on, read through that night's day: a
        # deferred run's job woke between the settle and the next night. It is checked as an earlier sync.)
        finished_tonight = last.finished_at is not None and last.finished_at >= final_night
        if state == "synced" and finished_tonight and last.window_to == today:
            truth = sandbox_transactions(account.external_id, account.sync_from, today, today)
            booked = {t.provider_id: t.amount for t in truth if t.booking_status is BookingStatus.booked}
            pending = {t.provider_id for t in truth if t.booking_status is BookingStatus.pending}
            got_booked = {r.provider_id: r.amount for r in rows if r.booking_status == "booked"}
            got_pending = {r.provider_id for r in rows if r.booking_status == "pending"}
            if got_booked != booked:
                missing = set(booked) - set(got_booked)
                extra = set(got_booked) - set(booked)
                problems.append(
                    f"{kind} {sid}: booked rows differ: {len(missing)} missing, {len(extra)} extra "
                    f"(missing booked on {sorted({str(t.booking_date) for t in truth if t.provider_id in missing})}); "
                    f"runs: {describe_runs(runs_by_account[account_id])}"
                )
            if got_pending != pending:
                problems.append(f"{kind} {sid}: pending rows differ")
            outcome["verified_against_ground_truth"] += 1
        elif account.last_synced_at is not None:
            # synced on an earlier night: what we have is the bank's, nothing invented
            truth = sandbox_transactions(account.external_id, account.sync_from, today, today)
            booked = {t.provider_id: t.amount for t in truth if t.booking_status is BookingStatus.booked}
            for r in rows:
                if r.booking_status == "booked" and booked.get(r.provider_id) != r.amount:
                    problems.append(f"{kind} {sid}: booked row {r.provider_id} not at the bank")
                    break
    stats["outcomes"] = dict(sorted(outcome.items()))
    stats["bank_calls"] = counter.calls
    stats["bank_allowance_refusals"] = counter.exceeded
    stats["soak_seconds"] = round(time.monotonic() - soak_started, 1)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / f"soak-{'full' if FULL else 'ci'}.json").write_text(json.dumps(stats, indent=2))
    with capfd.disabled():
        print("\nfault soak:", json.dumps(stats))
    assert problems == [], "\n".join(problems[:40])
    assert outcome["verified_against_ground_truth"] >= N_ACCOUNTS // 2

    # ---- the bank's own counters: no consent, account, endpoint and day above its frequencyPerDay
    for consent in bank.consents.values():
        for key, used in consent.usage.items():
            assert used <= consent.frequency_per_day, (consent.id, key, used)
    assert counter.exceeded == 0, (
        f"the bank refused reads for exceeding the allowance: {counter.refused[:10]}"
    )

    # ---- secrets: none of the actual values in any log line (worker logs and this process's output)
    secrets: set[str] = {settings.security.encryption_keys.get_secret_value().split(":", 1)[1]}
    if settings.auth.jwt_secret is not None:
        secrets.add(settings.auth.jwt_secret.get_secret_value())
    secrets.update(bank.consents)
    for connection in connections.values():
        credentials = load_credentials(settings, connection)
        secrets.update(
            v for v in (credentials.consent_id, credentials.access_token, credentials.refresh_token) if v
        )
    secrets = {s for s in secrets if len(s) >= 8}
    assert len(secrets) >= N_ACCOUNTS
    captured = capfd.readouterr()
    text = "\n".join(
        [captured.out, captured.err, *(p.read_text(errors="replace") for p in sorted(logs.iterdir()))]
    )
    assert "sync.run.succeeded" in text  # the logs are really there
    tokens = set(re.findall(r"[A-Za-z0-9_\-+/=.~]{8,}", text))
    leaked = sorted(secrets & tokens) + [s for s in sorted(secrets)[:200] if s in text]
    assert leaked == [], f"secrets in logs: {leaked[:5]}"
