"""Payments per second, end to end through the payment service (issue 3).

`measure(env, logs, label)` runs against an imported benchmark database (`env` names it: the
10,000-guarantor one, on PostgreSQL):

1. `pops prepare --practice bench` (a Sandbox merchant account and a default Group);
2. BENCH_PAYMENT_CLIENTS (8) client processes, each `django.setup()`, each with its own share
   of the practice's guarantors (seeded shuffle, disjoint): it keeps those whose Current
   Balance covers the amount, makes one Sandbox card token per payment (what the hosted fields
   would have made in the browser before the payment is submitted), and pays 2 warm-up
   payments. All of that is before the clock starts;
3. on the parent's signal every client calls `pay(PaymentRequest(...))` for its payments one
   after the other: BENCH_PAYMENTS (1200) in all, each to a different guarantor, each under
   its own idempotency key (unique to the run, so a second run on a kept database pays anew).
   One in TWIN_EVERY of them is also sent by the next client (same key, fingerprint and
   token: a double click or a retry arriving through another server process) right after
   that client's own payment of the same position, so the clients race on the same key;
4. payments/s = succeeded payments / (last call's end - signal). Latency = each payment's own
   `pay` call (not its twin's), wall clock in its client. CPU per request = the clients'
   process time and, when the server runs on this machine, their PostgreSQL backends' CPU
   (from /proc) over the measured calls. Then a check counts duplicates over every payment
   of the practice: two attempts for one key, two Sandbox transactions for one merchant
   reference, a succeeded attempt without exactly one paid POPS receipt, a paid POPS receipt
   without its attempt, approved (not voided) Sandbox transactions that no succeeded attempt
   accounts for, ledger PAYMENT entries per receipt other than one, and the money of each
   side against the others.

The clients run as configured by default: a payment queues its emailed receipt (when due) in
the database, in the transaction that settles it. After the clock stops, one `pops db_worker
--batch` sends every queued receipt through Django's in-memory email backend (no SMTP server);
its time is reported as emails per second, apart from the payments (in production the worker
runs beside the web processes, on their machine or another).

    python bench/payments.py --worker ...   (a client; started by measure)
    python bench/payments.py --check        (the duplicate count; started by measure)
    python bench/payments.py --tasks        (the task queue by status; started by measure)
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Any

POPS = Path(sys.executable).parent / "pops"
PRACTICE = "bench"
SEED = 20260101
AMOUNT_CENTS = 1000  # $10.00 each
WARM_UP = 2
TWIN_EVERY = 20
APPROVED_CARD = "4111111111111111"

PAYMENTS_PER_SECOND = 150  # the target of issue 3, on PostgreSQL, 8 clients, 2 cores


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- the parent -------------------------------------------------------------------------------


def client_env(env: dict[str, str]) -> dict[str, str]:
    return dict(env, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")


def measure(env: dict[str, str], logs: Path, label: str) -> dict[str, Any]:
    """Prepare the practice, run the clients, count duplicates. `env` names the database."""
    clients = int(os.environ.get("BENCH_PAYMENT_CLIENTS", "8"))
    total = int(os.environ.get("BENCH_PAYMENTS", "1200"))
    per_client = max(1, total // clients)
    env = client_env(env)
    with open(logs / f"{label}-prepare.log", "wb") as log:
        subprocess.run(
            [str(POPS), "prepare", "--practice", PRACTICE],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    rounds = max(1, int(os.environ.get("BENCH_PAYMENT_ROUNDS", "3")))
    runs = []
    for number in range(rounds):
        print(
            f"[{label}] payments, round {number + 1} of {rounds}: {clients} clients x "
            f"{per_client}, preparing tokens ...",
            flush=True,
        )
        runs.append(one_round(env, logs, label, clients, per_client, profile=number == 0))
    # The round of median throughput stands for the run (the host's speed drifts from minute to
    # minute); the duplicate count of the last round covers every payment of every round.
    median = sorted(runs, key=lambda r: r["payments_per_second"])[len(runs) // 2]
    figures = {
        **median,
        "duplicates": runs[-1]["duplicates"],
        "counts": runs[-1]["counts"],
        "rounds": [
            {key: r[key] for key in ROUND_SUMMARY} | {"duplicates": r["duplicates"]["total"]}
            for r in runs
        ],
    }
    print(
        f"[{label}] payments: median of {rounds} rounds {figures['payments_per_second']:.1f}/s "
        f"(rounds: {', '.join(str(r['payments_per_second']) for r in runs)}), "
        f"duplicates {figures['duplicates']['total']}",
        flush=True,
    )
    return figures


ROUND_SUMMARY = (
    "payments_per_second",
    "p50_ms",
    "p99_ms",
    "cpu_ms_per_request",
    "load_average",
    "host_speed_ns",
)


def one_round(
    env: dict[str, str], logs: Path, label: str, clients: int, per_client: int, *, profile: bool
) -> dict[str, Any]:
    """One timed round: the clients' payments, then the duplicate count over the practice."""
    profile = profile and os.environ.get("BENCH_PROFILE") == "1"
    run = f"{time.time_ns():x}"  # in every idempotency key: a second run on the database is new
    workers = []
    for number in range(clients):
        profiled = ("--profile", str(logs / f"{label}-client-0-profile.txt"))
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    *("--client", str(number), "--clients", str(clients)),
                    *("--payments", str(per_client), "--run", run),
                    *(profiled if profile and number == 0 else ()),
                ],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(logs / f"{label}-client-{number}.log", "wb"),  # noqa: SIM115
                text=True,
            )
        )
    ready = []
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if not line:
            for other in workers:
                other.kill()
            raise RuntimeError(f"a payment client failed: see {logs}/{label}-client-*.log")
        ready.append(json.loads(line))
    # Twins: position j (every TWIN_EVERY-th) of client k is also sent by client k + 1.
    twins: list[list[dict[str, Any]]] = [[] for _ in workers]
    for number, slots in enumerate(ready):
        for position in range(0, len(slots["slots"]), TWIN_EVERY):
            twins[(number + 1) % clients].append({**slots["slots"][position], "at": position})
    speed_ns = host_speed_ns()
    load_before = list(os.getloadavg())
    started = time.monotonic()
    for worker, extra in zip(workers, twins, strict=True):
        assert worker.stdin is not None
        worker.stdin.write(json.dumps({"twins": extra}) + "\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, _ = worker.communicate()
        if worker.returncode:
            raise RuntimeError(f"a payment client exited {worker.returncode}: see {logs}")
        results.append(json.loads(out))
    ended = max(result["ended"] for result in results)
    load_after = list(os.getloadavg())
    seconds = ended - started
    calls = [call for result in results for call in result["calls"]]
    outcomes: dict[str, int] = {}
    for call in calls:
        outcomes[call["outcome"]] = outcomes.get(call["outcome"], 0) + 1
    # A payment counts once, whichever of its requests (it and its twin) answered "succeeded".
    succeeded = len({call["key"] for call in calls if call["outcome"] == "succeeded"})
    latencies = [call["ms"] for call in calls if not call["twin"]]
    check = json.loads(run_self("--check", env))
    emails = send_queued_emails(env, logs / f"{label}-worker.log")
    figures = {
        "clients": clients,
        "payments": per_client * clients,
        "twin_requests": sum(1 for call in calls if call["twin"]),
        "amount_cents": AMOUNT_CENTS,
        "guarantors_paid": len({call["guarantor"] for call in calls}),
        "outcomes": outcomes,
        "succeeded_payments": succeeded,
        "wall_seconds": round(seconds, 3),
        "payments_per_second": round(succeeded / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "cpu_ms_per_request": {
            "clients": round(sum(r["cpu_seconds"] for r in results) * 1000 / len(calls), 2),
            "postgresql_backends": None
            if any(r["backend_cpu_seconds"] is None for r in results)
            else round(sum(r["backend_cpu_seconds"] for r in results) * 1000 / len(calls), 2),
        },
        "duplicates": check["duplicates"],
        "counts": check["counts"],
        "load_average": {"before": load_before, "after": load_after},
        "receipt_emails": emails,
        "host_speed_ns": speed_ns,
    }
    print(
        f"[{label}]   this round: {figures['payments_per_second']:.1f}/s, "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"duplicates {figures['duplicates']['total']} (host speed {speed_ns:.0f} ns); "
        f"the worker sent {emails['sent']} "
        f"receipt emails at {emails['per_second']}/s, {emails['left']} left",
        flush=True,
    )
    return figures


def host_speed_ns() -> float:
    """How fast this host runs Python right now: ns per `sum(range(100))`, best of 5 (what
    `python -m timeit "sum(range(100))"` prints). A virtual machine's speed drifts from minute
    to minute; a round's payments per second are read against it."""
    return round(min(timeit.repeat("sum(range(100))", number=100_000, repeat=5)) * 1e4, 1)


def run_self(mode: str, env: dict[str, str]) -> str:
    command = [sys.executable, __file__, mode]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def send_queued_emails(env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run one `pops db_worker --batch` over the receipt emails the round queued: how many tasks
    it ran to the end (each sends one email, or none when the receipt was voided since), how
    fast (the worker's Django start-up of about a second included), and how many tasks are
    left queued or failed after it."""
    before = json.loads(run_self("--tasks", env))
    started = time.monotonic()
    with open(log, "ab") as out:
        subprocess.run(
            [str(POPS), "db_worker", "--batch", "--no-startup-delay"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    seconds = time.monotonic() - started
    after = json.loads(run_self("--tasks", env))
    sent = after.get("SUCCESSFUL", 0) - before.get("SUCCESSFUL", 0)
    return {
        "queued": before.get("READY", 0),
        "sent": sent,
        "seconds": round(seconds, 3),
        "per_second": round(sent / seconds, 1) if seconds else None,
        "left": after.get("READY", 0),
        "failed": after.get("FAILED", 0) - before.get("FAILED", 0),
    }


def task_counts() -> dict[str, int]:
    """The task queue's rows by status."""
    import django

    django.setup()
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    return {
        row["status"]: row["n"]
        for row in DBTaskResult.objects.values("status").annotate(n=Count("id"))
    }


# --- a client (runs with django.setup()) ------------------------------------------------------


def worker(client: int, clients: int, payments: int, run: str, profile: str = "") -> None:
    import django

    django.setup()
    from django.db import connection

    from pops.core import clock
    from pops.core.audit import Actor
    from pops.groups.services import resolve_group
    from pops.ledger.models import Guarantor
    from pops.ledger.services.balances import guarantor_balances
    from pops.payments.gateways.sandbox import tokens
    from pops.payments.services.attempts import PaymentRequest, pay
    from pops.payments.services.errors import InProgress

    practice_guarantors = Guarantor.objects.filter(practice__external_id=PRACTICE)
    ids = sorted(practice_guarantors.values_list("id", flat=True))
    random.Random(SEED).shuffle(ids)
    group = resolve_group(practice_guarantors.first().practice)  # type: ignore[union-attr]
    mine: list[Guarantor] = []
    for guarantor in practice_guarantors.filter(id__in=ids[client::clients][: 3 * payments + 50]):
        if len(mine) == payments + WARM_UP:
            break
        balances = guarantor_balances(guarantor, include_new_charges=group.include_new_charges)
        if balances.current_balance >= AMOUNT_CENTS:
            mine.append(guarantor)
    if len(mine) < payments + WARM_UP:
        raise SystemExit(f"only {len(mine)} guarantors with a balance for client {client}")
    random.Random(SEED + client).shuffle(mine)
    exp = f"12/{(clock.now().year + 2) % 100:02d}"
    actor = Actor.command("bench")
    slots: list[dict[str, Any]] = []
    for index, guarantor in enumerate(mine):
        key = f"bench-{run}-{client}-{index}"
        slots.append(
            {
                "guarantor": guarantor.pk,
                "key": key,
                "token": tokens.tokenize_card(APPROVED_CARD, exp, "123"),
                "email": guarantor.email,
            }
        )
    by_id = {guarantor.pk: guarantor for guarantor in mine}

    def request(slot: dict[str, Any], guarantor: Guarantor) -> PaymentRequest:
        return PaymentRequest(
            guarantor,
            AMOUNT_CENTS,
            slot["key"],
            f"fp-{slot['key']}",
            actor,
            payment_token=slot["token"],
            email=slot["email"],
        )

    for slot in slots[:WARM_UP]:
        pay(request(slot, by_id[slot["guarantor"]]))
    measured = slots[WARM_UP:]
    print(json.dumps({"slots": measured}), flush=True)
    go = json.loads(sys.stdin.readline())
    twins: dict[int, list[dict[str, Any]]] = {}
    for twin in go["twins"]:
        twins.setdefault(twin["at"], []).append(twin)
    twin_guarantors = {
        g.pk: g for g in Guarantor.objects.filter(id__in=[t["guarantor"] for t in go["twins"]])
    }
    connection.close()  # every client starts with a fresh connection, like a new request
    backend = None  # the PostgreSQL server process serving this client, for its CPU time
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]

    calls: list[dict[str, Any]] = []

    def call(slot: dict[str, Any], guarantor: Guarantor, twin: bool) -> None:
        started = time.perf_counter()
        try:
            outcome = str(pay(request(slot, guarantor)).status)
        except InProgress:
            outcome = "in_progress"
        except Exception as error:  # reported, and counted as a failure
            outcome = f"error:{type(error).__name__}"
            print(f"{slot['key']}: {error!r}", file=sys.stderr)
        ms = (time.perf_counter() - started) * 1000
        calls.append(
            {"key": slot["key"], "guarantor": slot["guarantor"], "twin": twin, "ms": ms}
            | {"outcome": outcome}
        )

    cpu_started, backend_started = time.process_time(), backend_cpu(backend)
    profiler = None
    if profile:  # BENCH_PROFILE=1: this client's calls under pyinstrument (pip install it)
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    for position, slot in enumerate(measured):
        call(slot, by_id[slot["guarantor"]], twin=False)
        for twin in twins.get(position, []):
            call(twin, twin_guarantors[twin["guarantor"]], twin=True)
    ended = time.monotonic()
    cpu = time.process_time() - cpu_started
    backend_used = backend_cpu(backend)
    if backend_used is not None and backend_started is not None:
        backend_used -= backend_started
    if profiler is not None:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=True, color=False))
    print(
        json.dumps(
            {
                "ended": ended,
                "calls": calls,
                "cpu_seconds": cpu,
                "backend_cpu_seconds": backend_used,
            }
        )
    )


def backend_cpu(pid: int | None) -> float | None:
    """CPU seconds the client's own PostgreSQL backend has used (utime + stime from /proc, when
    the server runs on this machine), else None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the duplicate count ----------------------------------------------------------------------


def check() -> dict[str, Any]:
    """Gateway charges against attempts against receipts against ledger entries."""
    import django

    django.setup()
    from django.db.models import Count, Sum

    from pops.ledger.models import LedgerEntry, Practice, Receipt
    from pops.payments.gateways.sandbox.models import Transaction
    from pops.payments.models import PaymentAttempt, PaymentPart

    practice = Practice.objects.get(external_id=PRACTICE)
    attempts = PaymentAttempt.objects.filter(practice=practice)
    succeeded = attempts.filter(status=PaymentAttempt.Status.SUCCEEDED)
    receipts = Receipt.objects.filter(practice=practice, made_in_pops=True)
    paid = receipts.filter(status=Receipt.Status.PAID)
    parts = PaymentPart.objects.filter(attempt__practice=practice)
    references = list(parts.values_list("merchant_reference", flat=True))
    txns = Transaction.objects.filter(merchant_reference__in=references)
    approved = txns.filter(status=Transaction.Status.APPROVED)

    per_receipt: dict[int, int] = {}
    for row in (
        LedgerEntry.objects.filter(receipt__in=paid, kind=LedgerEntry.Kind.PAYMENT)
        .values("receipt_id")
        .annotate(n=Count("id"))
    ):
        per_receipt[row["n"]] = per_receipt.get(row["n"], 0) + 1

    def total(queryset: Any, field: str = "amount_cents") -> int:
        return queryset.aggregate(total=Sum(field, default=0))["total"]

    duplicates = {
        "attempts_per_key_over_1": attempts.values("idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "sandbox_transactions_per_reference_over_1": Transaction.objects.values(
            "merchant_id", "merchant_reference"
        )
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "succeeded_attempts_without_paid_receipt": succeeded.exclude(
            receipt__status=Receipt.Status.PAID
        ).count(),
        "paid_pops_receipts_without_succeeded_attempt": paid.exclude(
            attempt__status=PaymentAttempt.Status.SUCCEEDED
        ).count(),
        "approved_transactions_beyond_succeeded_attempts": max(
            0, approved.count() - succeeded.count()
        ),
        "payment_entries_per_paid_receipt_not_1": paid.count() - per_receipt.get(1, 0),
    }
    money = {
        "succeeded_attempts_cents": total(succeeded),
        "paid_pops_receipts_cents": total(paid),
        "approved_transactions_cents": total(approved),
    }
    duplicates["money_mismatches"] = int(len(set(money.values())) != 1)
    duplicates["total"] = sum(duplicates.values())
    return {
        "duplicates": duplicates,
        "counts": {
            "attempts": attempts.count(),
            "attempts_succeeded": succeeded.count(),
            "pops_receipts_paid": paid.count(),
            "sandbox_transactions": txns.count(),
            "sandbox_transactions_approved": approved.count(),
            **money,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--tasks", action="store_true")
    parser.add_argument("--client", type=int, default=0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--payments", type=int, default=150)
    parser.add_argument("--run", default="0")
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    if args.worker:
        worker(args.client, args.clients, args.payments, args.run, args.profile)
    elif args.check:
        print(json.dumps(check()))
    elif args.tasks:
        print(json.dumps(task_counts()))
    else:
        parser.error("run by bench/run.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
