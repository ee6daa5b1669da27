"""The benchmark behind `make bench`: import throughput, one guarantor's balances (issue 2) and
payments per second (issue 3, PostgreSQL only; bench/payments.py).

For each database (SQLite always; PostgreSQL when DATABASE_URL names a PostgreSQL server) and
each size (BENCH_SIZES, default "10000,200000" guarantors):

1. a fresh database: an SQLite file var/bench/sqlite-<size>.sqlite3, or the database
   `pops_bench_<size>` created anew on DATABASE_URL's server (the database DATABASE_URL itself
   names, such as `test`, is never touched);
2. `pops migrate`, then `pops import` of the generated document in a subprocess, timed wall to
   wall: service lines per second = lines in the document / wall seconds (Django's start-up
   included);
3. `ANALYZE` (BENCH_ANALYZE=0 skips it), as PostgreSQL's autovacuum would soon after a bulk
   load: without statistics PostgreSQL plans the balance queries as sequential scans;

then, with every size loaded, BENCH_ROUNDS (3) rounds, each running one worker process per size
(django.setup(), a warm-up on 100 guarantors, then `guarantor_balances` timed with perf_counter
for the same BENCH_SAMPLES (500) random guarantors). Interleaving the sizes keeps the ratio
between them fair on a machine whose load changes. On PostgreSQL, last, the payments benchmark
runs on the smallest size (bench/payments.py). The databases are dropped at the end.

It prints a table and writes bench/results/<database>-<timestamp>.json. Documents are generated
once into bench/data/ (keyed by the generator's own hash, so a changed generator regenerates).

Environment: BENCH_SIZES, BENCH_DATABASES ("sqlite,postgresql"), BENCH_SAMPLES, BENCH_ROUNDS,
BENCH_ANALYZE=0, BENCH_PAYMENTS (1200; 0 skips payments), BENCH_PAYMENT_CLIENTS (8),
BENCH_PROFILE=1 (pyinstrument on payment client 0), BENCH_KEEP=1 (keep the benchmark databases
afterwards), BENCH_STRICT=1 (exit 1 on a missed target). The `pops` processes run with
DEBUG=false.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import payments as payments_bench  # bench/payments.py (this directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"
RESULTS = BENCH / "results"
WORK = ROOT / "var" / "bench"
POPS = Path(sys.executable).parent / "pops"
PG_DATABASE = "pops_bench"
SEED = 20260101

# The targets of issue 2, item 10.
IMPORT_LINES_PER_SECOND = 20_000  # on PostgreSQL
BALANCES_MEDIAN_MS = 5.0
BALANCES_GROWTH = 1.5  # largest size / smallest size, median


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


# --- documents ------------------------------------------------------------------------------


def document(size: int) -> tuple[Path, dict[str, Any]]:
    """The generated document for `size` guarantors and its counts, generated if needed."""
    key = hashlib.sha256((BENCH / "generate.py").read_bytes()).hexdigest()[:10]
    path = DATA / f"practice-{size}-{key}.json"
    meta_path = Path(f"{path}.meta.json")
    if not meta_path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        for stale in DATA.glob(f"practice-{size}-*.json*"):
            stale.unlink()
        print(f"generating {path.relative_to(ROOT)} ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(BENCH / "generate.py"),
                *("--guarantors", str(size), "--out", str(path), "--seed", str(SEED)),
            ],
            check=True,
        )
    return path, json.loads(meta_path.read_text())


# --- databases ------------------------------------------------------------------------------


class Database:
    name: str

    def url(self, size: int) -> str:
        raise NotImplementedError

    def create(self, size: int) -> None:
        raise NotImplementedError

    def drop(self, size: int) -> None:
        raise NotImplementedError


class SQLite(Database):
    name = "sqlite"

    def path(self, size: int) -> Path:
        return WORK / f"sqlite-{size}.sqlite3"

    def url(self, size: int) -> str:
        return f"sqlite:///{self.path(size)}"

    def drop(self, size: int) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path(size)}{suffix}").unlink(missing_ok=True)

    def create(self, size: int) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        self.drop(size)


class PostgreSQL(Database):
    """`pops_bench_<size>` on the server DATABASE_URL names, administered from its `postgres`
    database. The database DATABASE_URL itself names (such as `test`) is never touched."""

    name = "postgresql"

    def __init__(self, url: str):
        self.parts = urlsplit(url)
        if self.parts.path.lstrip("/").startswith(PG_DATABASE):
            raise SystemExit(f"DATABASE_URL must not name a {PG_DATABASE}* database")
        self.admin_url = urlunsplit(self.parts._replace(path="/postgres"))

    @staticmethod
    def database(size: int) -> str:
        return f"{PG_DATABASE}_{size}"

    def url(self, size: int) -> str:
        return urlunsplit(self.parts._replace(path=f"/{self.database(size)}"))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def create(self, size: int) -> None:
        self.drop(size)
        self._admin(f'CREATE DATABASE "{self.database(size)}"')

    def drop(self, size: int) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.database(size)}" WITH (FORCE)')


def databases() -> list[Database]:
    wanted = env_list("BENCH_DATABASES", "sqlite,postgresql")
    found: list[Database] = []
    if "sqlite" in wanted:
        found.append(SQLite())
    url = os.environ.get("DATABASE_URL", "")
    if "postgresql" in wanted and url.startswith(("postgres://", "postgresql://")):
        found.append(PostgreSQL(url))
    elif "postgresql" in wanted:
        print("DATABASE_URL is not a PostgreSQL URL: PostgreSQL skipped", flush=True)
    return found


# --- one measurement ------------------------------------------------------------------------


def pops_env(url: str) -> dict[str, str]:
    """The environment of every `pops` process: production-like (DEBUG off)."""
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="pops.settings")
    # The Sandbox gateway is off by default with DEBUG off; the payments benchmark pays through it.
    env.update(DEBUG="false", LOG_LEVEL="WARNING", SECURE_COOKIES="false")
    env.setdefault("SANDBOX_GATEWAY_ENABLED", "true")
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    env.setdefault("POPS_HOME", str(ROOT))
    return env


def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run `command`, output to `log`; returns (wall seconds, peak resident MB)."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss / 1024


def analyze(url: str) -> float:
    """ANALYZE the benchmark database (planner statistics after a bulk load)."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.execute("ANALYZE")
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE")
    return time.perf_counter() - started


def load(database: Database, size: int) -> dict[str, Any]:
    """A fresh database with the document for `size` guarantors imported; the figures."""
    path, meta = document(size)
    lines = meta["counts"]["lines"]
    url = database.url(size)
    env = pops_env(url)
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    label = f"{database.name}-{size}"
    load_before = list(os.getloadavg())
    print(f"[{label}] fresh database, migrate ...", flush=True)
    database.create(size)
    migrate_s, _ = timed([str(POPS), "migrate", "--no-input"], env, logs / f"{label}-migrate.log")
    print(f"[{label}] import {lines:,} lines ({meta['bytes'] / 1e6:.0f} MB) ...", flush=True)
    import_log = logs / f"{label}-import.log"
    import_s, import_rss = timed([str(POPS), "import", str(path)], env, import_log)
    reported = None
    for line in import_log.read_text().splitlines():
        if line.startswith("Imported into practice") and line.endswith("s"):
            reported = float(line.rsplit(" ", 1)[1].rstrip("s"))
    print(f"[{label}] imported in {import_s:.1f}s: {lines / import_s:,.0f} lines/s", flush=True)
    analyze_s = analyze(url) if os.environ.get("BENCH_ANALYZE", "1") != "0" else None
    return {
        "guarantors": size,
        "document": {"file": path.name, "bytes": meta["bytes"], "counts": meta["counts"]},
        "migrate_seconds": round(migrate_s, 3),
        "import": {
            "lines": lines,
            "wall_seconds": round(import_s, 3),
            "command_reported_seconds": reported,
            "lines_per_second": round(lines / import_s),
            "peak_rss_mb": round(import_rss),
            "load_average": {"before": load_before, "after": list(os.getloadavg())},
        },
        "analyze_seconds": None if analyze_s is None else round(analyze_s, 3),
    }


def time_balances(database: Database, sizes: list[int]) -> dict[int, dict[str, Any]]:
    """Balances timings for every size, interleaved: each round runs one worker process per
    size, one after the other, so a change in the machine's load between rounds (other work on
    a shared machine) weighs on every size alike and the ratio between sizes stays fair."""
    samples = int(os.environ.get("BENCH_SAMPLES", "500"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    timings: dict[int, list[float]] = {size: [] for size in sizes}
    round_medians: dict[int, list[float]] = {size: [] for size in sizes}
    queries: dict[int, int] = {}
    loads: list[float] = []
    for number in range(rounds):
        loads.append(os.getloadavg()[0])
        for size in sizes if number % 2 == 0 else reversed(sizes):
            worker = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    *("--balances-worker", "--samples", str(samples), "--round", str(number)),
                ],
                env=pops_env(database.url(size)),
                check=True,
                capture_output=True,
                text=True,
            )
            found = json.loads(worker.stdout)
            timings[size].extend(found["timings_ms"])
            round_medians[size].append(round(statistics.median(found["timings_ms"]), 3))
            queries[size] = found["queries_per_call"]
    results = {}
    for size in sizes:
        values = timings[size]
        results[size] = {
            "guarantors_sampled": samples,
            "rounds": rounds,
            "calls": len(values),
            "queries_per_call": queries[size],
            "median_ms": round(statistics.median(values), 3),
            "p90_ms": round(percentile(values, 0.90), 3),
            "p99_ms": round(percentile(values, 0.99), 3),
            "mean_ms": round(statistics.fmean(values), 3),
            "min_ms": round(min(values), 3),
            "round_medians_ms": round_medians[size],
            "load_average_1min_per_round": [round(value, 2) for value in loads],
        }
        print(
            f"[{database.name}-{size}] balances: median {results[size]['median_ms']:.2f} ms, "
            f"p90 {results[size]['p90_ms']:.2f} ms",
            flush=True,
        )
    return results


def measure(database: Database, sizes: list[int]) -> tuple[list[dict[str, Any]], Any]:
    """Import at every size (keeping the databases), then time balances at all of them, then
    (PostgreSQL only) payments per second on the smallest size. Returns (sizes, payments)."""
    try:
        figures = [load(database, size) for size in sizes]
        balances = time_balances(database, sizes)
        for entry in figures:
            entry["balances"] = balances[entry["guarantors"]]
        paid = None
        if isinstance(database, PostgreSQL) and os.environ.get("BENCH_PAYMENTS") != "0":
            size = min(sizes)
            paid = payments_bench.measure(
                pops_env(database.url(size)), WORK / "logs", f"{database.name}-{size}"
            )
            paid["guarantors"] = size
        return figures, paid
    finally:
        if not os.environ.get("BENCH_KEEP"):
            for size in sizes:
                database.drop(size)


# --- the balances worker (runs inside a process with django.setup()) -----------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def balances_worker(samples: int, round_number: int) -> dict[str, Any]:
    """Time `guarantor_balances` for `samples` random guarantors (the same ones every round, in
    a new order each round) after a warm-up on 100 others; half of the calls with the Group
    option "Include New Charges in Amount Due" on."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pops.ledger.models import Guarantor
    from pops.ledger.services.balances import guarantor_balances

    ids = sorted(Guarantor.objects.values_list("id", flat=True))
    chosen = random.Random(SEED).sample(ids, min(len(ids), samples + 100))
    warm_up, measured = chosen[:100], chosen[100:]
    for pk in warm_up:
        guarantor_balances(pk, include_new_charges=False)
    with CaptureQueriesContext(connection) as queries:
        guarantor_balances(measured[0], include_new_charges=False)
    random.Random(round_number).shuffle(measured)
    timings: list[float] = []
    for index, pk in enumerate(measured):
        include = index % 2 == 1
        started = time.perf_counter()
        guarantor_balances(pk, include_new_charges=include)
        timings.append((time.perf_counter() - started) * 1000)
    return {"queries_per_call": len(queries), "timings_ms": [round(t, 4) for t in timings]}


# --- report ---------------------------------------------------------------------------------


@dataclass
class Report:
    database: str
    sizes: list[dict[str, Any]] = field(default_factory=list)
    payments: dict[str, Any] | None = None
    wall_seconds: float = 0.0
    load_average: dict[str, list[float]] = field(default_factory=dict)

    def growth(self) -> float | None:
        if len(self.sizes) < 2:
            return None
        small = min(self.sizes, key=lambda s: s["guarantors"])["balances"]["median_ms"]
        large = max(self.sizes, key=lambda s: s["guarantors"])["balances"]["median_ms"]
        return round(large / small, 3)

    def verdicts(self) -> dict[str, bool]:
        verdicts = {
            f"balances_median_under_{BALANCES_MEDIAN_MS:g}ms": all(
                s["balances"]["median_ms"] < BALANCES_MEDIAN_MS for s in self.sizes
            )
        }
        if (growth := self.growth()) is not None:
            verdicts[f"balances_growth_at_most_{BALANCES_GROWTH:g}x"] = growth <= BALANCES_GROWTH
        if self.database == "postgresql":
            verdicts[f"import_at_least_{IMPORT_LINES_PER_SECOND}_lines_per_s"] = all(
                s["import"]["lines_per_second"] >= IMPORT_LINES_PER_SECOND for s in self.sizes
            )
        if self.payments is not None:
            target = payments_bench.PAYMENTS_PER_SECOND
            verdicts[f"payments_at_least_{target}_per_s"] = (
                self.payments["payments_per_second"] >= target
            )
            verdicts["payments_no_duplicates"] = self.payments["duplicates"]["total"] == 0
        return verdicts


def server_version(database: Database) -> str:
    if isinstance(database, PostgreSQL):
        import psycopg

        with psycopg.connect(database.admin_url) as connection:
            version = connection.execute("SHOW server_version").fetchone()
            autovacuum = connection.execute("SHOW autovacuum").fetchone()
            return (
                f"PostgreSQL {version[0] if version else '?'} "
                f"(autovacuum {autovacuum[0] if autovacuum else '?'})"
            )
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_table(reports: list[Report]) -> None:
    header = (
        f"{'database':<11}{'guarantors':>11}{'lines':>11}{'import s':>10}{'lines/s':>10}"
        f"{'peak MB':>9}{'bal median ms':>15}{'p90 ms':>8}{'p99 ms':>8}"
    )
    print("\n" + header)
    print("-" * len(header))
    for report in reports:
        for s in report.sizes:
            imp, bal = s["import"], s["balances"]
            print(
                f"{report.database:<11}{s['guarantors']:>11,}{imp['lines']:>11,}"
                f"{imp['wall_seconds']:>10.1f}{imp['lines_per_second']:>10,}"
                f"{imp['peak_rss_mb']:>9,}{bal['median_ms']:>15.2f}{bal['p90_ms']:>8.2f}"
                f"{bal['p99_ms']:>8.2f}"
            )
        if (growth := report.growth()) is not None:
            print(f"{report.database:<11} balances median, largest/smallest size: {growth:.2f}x")
        if (paid := report.payments) is not None:
            print(
                f"{report.database:<11} payments ({paid['clients']} client processes, "
                f"{paid['guarantors']:,} guarantors): {paid['payments_per_second']:.1f}/s "
                f"({paid['succeeded_payments']} in {paid['wall_seconds']:.1f}s; median of rounds "
                f"{', '.join(str(r['payments_per_second']) for r in paid['rounds'])}), "
                f"p50 {paid['p50_ms']:.1f} ms, p99 {paid['p99_ms']:.1f} ms, "
                f"duplicates {paid['duplicates']['total']} "
                f"({paid['twin_requests']} twin requests); host speed "
                f"{', '.join(str(r['host_speed_ns']) for r in paid['rounds'])} ns"
            )
            emails = paid["receipt_emails"]
            print(
                f"{report.database:<11} receipt emails: one worker sent {emails['sent']} at "
                f"{emails['per_second']}/s after the round ({emails['left']} left, "
                f"{emails['failed']} failed)"
            )
        load = report.load_average
        print(
            f"{report.database:<11} wall time {report.wall_seconds / 60:.1f} min; load average "
            f"(1/5/15 min) {'/'.join(f'{v:.2f}' for v in load.get('start', []))} at the start, "
            f"{'/'.join(f'{v:.2f}' for v in load.get('end', []))} at the end"
        )
    print()
    for report in reports:
        for target, met in report.verdicts().items():
            print(f"{report.database:<11} {'met   ' if met else 'MISSED'} {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description="POPS benchmark (see bench/README.md)")
    parser.add_argument("--balances-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.balances_worker:
        print(json.dumps(balances_worker(args.samples, args.round)))
        return 0

    sizes = sorted(int(size) for size in env_list("BENCH_SIZES", "10000,200000"))
    reports: list[Report] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for database in databases():
        report = Report(database.name)
        started = time.perf_counter()
        report.load_average["start"] = [round(v, 2) for v in os.getloadavg()]
        report.sizes, report.payments = measure(database, sizes)
        report.load_average["end"] = [round(v, 2) for v in os.getloadavg()]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        report.wall_seconds = round(time.perf_counter() - started, 1)
        result: dict[str, Any] = {
            "database": database.name,
            "server": server_version(database),
            "timestamp": stamp,
            "commit": git_commit(),
            "machine": machine(),
            "load_average": report.load_average,
            "targets": {
                "import_lines_per_second_postgresql": IMPORT_LINES_PER_SECOND,
                "balances_median_ms": BALANCES_MEDIAN_MS,
                "balances_growth": BALANCES_GROWTH,
                "payments_per_second_postgresql": payments_bench.PAYMENTS_PER_SECOND,
            },
            "sizes": report.sizes,
            "payments": report.payments,
            "balances_growth": report.growth(),
            "verdicts": report.verdicts(),
            "wall_seconds": report.wall_seconds,
        }
        out = RESULTS / f"{database.name}-{stamp}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}", flush=True)
        reports.append(report)
    print_table(reports)
    missed = any(not met for report in reports for met in report.verdicts().values())
    return 1 if missed and os.environ.get("BENCH_STRICT") else 0


if __name__ == "__main__":
    sys.exit(main())
