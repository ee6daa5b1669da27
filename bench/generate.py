"""Write a synthetic practice as one import document (docs/import.md), streamed to a file.

    python bench/generate.py --guarantors 10000 --out bench/data/practice-10000.json

The document is never held in memory: one pass over the guarantors writes each section's items
to its own temporary file beside the output, then the sections are joined into the document.
The same guarantor count and seed always give the same bytes.

Per guarantor, on average: 1.5 patients, 2 encounters per patient (so 3), 2.5 lines per encounter
(1-4, so about 7.5 lines), 4% of encounters in collections, about 0.7 receipts (some with money
left unapplied, a few refunds), 1 statement and 0.75 appointments. Every amount obeys the import's
money rules: applications never exceed what a line owes nor the receipt, refunds never exceed the
guarantor's unapplied money.

Beside the document, `<out>.meta.json` records the counts (the benchmark's "lines in the
document" comes from there).
"""

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import IO, Any

SEED = 20260101
PRACTICE = {"id": "bench", "name": "Benchmark Medical Group", "time_zone": "America/Chicago"}
FACILITIES = [("F1", "Main Street Clinic"), ("F2", "Riverside Campus"), ("F3", "North Office")]
PROVIDERS = [
    (f"D{n}", f"Dr. {name}")
    for n, name in enumerate(
        ["Ada Ames", "Ben Brooks", "Cora Chen", "Dev Patel", "Eve Ortiz", "Finn Walsh"], start=1
    )
]
AGENCIES = [("CA1", "Acme Recovery"), ("CA2", "Midwest Collections")]
FIRST = ["Pat", "Sam", "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery"]
LAST = [
    "Lee",
    "Garcia",
    "Smith",
    "Nguyen",
    "Johnson",
    "Brown",
    "Davis",
    "Miller",
    "Wilson",
    "Moore",
]
CODES = [
    ("99213", "Office visit, established patient"),
    ("99214", "Office visit, moderate complexity"),
    ("80053", "Comprehensive metabolic panel"),
    ("85025", "Complete blood count"),
    ("71046", "Chest X-ray, 2 views"),
    ("93000", "Electrocardiogram"),
    ("36415", "Routine venipuncture"),
    ("90471", "Immunization administration"),
]
STATUSES = ["scheduled", "scheduled", "completed", "cancelled"]
START = dt.date(2024, 1, 1)
SECTIONS = [
    "facilities",
    "providers",
    "collection_agencies",
    "guarantors",
    "patients",
    "encounters",
    "receipts",
    "statements",
    "appointments",
]


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class SectionWriter:
    """One temporary file per section, items separated by commas."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.files: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = dict.fromkeys(SECTIONS, 0)
        for name in SECTIONS:
            self.files[name] = open(directory / f"{name}.part", "w", encoding="utf-8")  # noqa: SIM115

    def add(self, section: str, item: dict[str, Any]) -> None:
        out = self.files[section]
        if self.counts[section]:
            out.write(",\n")
        out.write(json.dumps(item, separators=(",", ":")))
        self.counts[section] += 1

    def join(self, out_path: Path) -> None:
        for handle in self.files.values():
            handle.close()
        with open(out_path, "w", encoding="utf-8") as out:
            out.write('{"practice":' + json.dumps(PRACTICE, separators=(",", ":")))
            for name in SECTIONS:
                out.write(f',\n"{name}":[\n')
                with open(self.directory / f"{name}.part", encoding="utf-8") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
                out.write("\n]")
            out.write("}\n")
        for name in SECTIONS:
            (self.directory / f"{name}.part").unlink()


def generate(guarantors: int, out_path: Path, seed: int = SEED) -> dict[str, Any]:
    """Write the document for `guarantors` guarantors to `out_path`; returns the counts."""
    rng = random.Random(f"{seed}:{guarantors}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = out_path.parent / f".{out_path.name}.parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    w = SectionWriter(work)
    for fid, name in FACILITIES:
        w.add("facilities", {"id": fid, "name": name})
    for pid, name in PROVIDERS:
        w.add("providers", {"id": pid, "name": name})
    for aid, name in AGENCIES:
        w.add("collection_agencies", {"id": aid, "name": name})

    lines = applications = collections = refunds = 0
    patient_no = encounter_no = receipt_no = statement_no = appointment_no = 0
    for g in range(guarantors):
        gid = str(10000 + g)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        w.add(
            "guarantors",
            {
                "id": gid,
                "first_name": first,
                "preferred_name": rng.choice(["", "", "", first[:3]]),
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{g}@example.com"
                if rng.random() < 0.8
                else "",
                "mobile": f"555-{200 + g // 10000 % 800:03d}-{g % 10000:04d}"
                if rng.random() < 0.7
                else "",
                "text_opt_out": rng.random() < 0.1,
            },
        )
        # Open (non-collection) lines of this guarantor and what each owes: [enc, line, owed]
        open_lines: list[list[Any]] = []
        last_service = START
        patients = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        for p in range(patients):
            patient_no += 1
            pid = f"P{patient_no}"
            w.add(
                "patients",
                {
                    "id": pid,
                    "guarantor": gid,
                    "first_name": first if p == 0 else rng.choice(FIRST),
                    "last_name": last,
                    "birth_date": (
                        dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30000))
                    ).isoformat(),
                },
            )
            for _ in range(rng.randint(1, 3)):
                encounter_no += 1
                number = str(100000 + encounter_no)
                service = START + dt.timedelta(days=rng.randrange(700))
                last_service = max(last_service, service)
                in_collections = rng.random() < 0.04
                placement = None
                if in_collections:
                    collections += 1
                    placement = {
                        "agency": rng.choice(AGENCIES)[0],
                        "sent_on": (service + dt.timedelta(days=120)).isoformat(),
                    }
                items = []
                for n in range(1, rng.randint(1, 4) + 1):
                    code, description = rng.choice(CODES)
                    billed = rng.randint(40, 900) * 100 + rng.randrange(100)
                    adjusted = billed * rng.randint(0, 30) // 100
                    insurance = (
                        (billed - adjusted) * rng.randint(40, 90) // 100
                        if rng.random() < 0.7
                        else 0
                    )
                    pending = (billed - adjusted - insurance) // 2 if rng.random() < 0.1 else 0
                    items.append(
                        {
                            "line": n,
                            "code": code,
                            "description": description,
                            "billed": money(billed),
                            "adjusted": money(adjusted),
                            "insurance_paid": money(insurance),
                            "pending_insurance": money(pending),
                        }
                    )
                    owed = billed - adjusted - insurance - pending
                    if not in_collections and owed > 0:
                        open_lines.append([number, n, owed])
                lines += len(items)
                w.add(
                    "encounters",
                    {
                        "number": number,
                        "patient": pid,
                        "facility": rng.choice(FACILITIES)[0],
                        "provider": rng.choice(PROVIDERS)[0],
                        "service_date": service.isoformat(),
                        "collections": placement,
                        "lines": items,
                    },
                )
            if rng.random() < 0.5:
                appointment_no += 1
                starts = dt.datetime.combine(
                    START + dt.timedelta(days=rng.randrange(900)), dt.time(8)
                ) + dt.timedelta(minutes=15 * rng.randrange(36))
                w.add(
                    "appointments",
                    {
                        "id": f"A{appointment_no}",
                        "patient": pid,
                        "facility": rng.choice(FACILITIES)[0],
                        "provider": rng.choice(PROVIDERS)[0],
                        "starts_at": starts.isoformat(),
                        "status": rng.choice(STATUSES),
                    },
                )
        # Receipts: about half the guarantors paid something.
        unapplied = 0
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 2)):
                receipt_no += 1
                apps = []
                applied = 0
                for target in rng.sample(open_lines, min(len(open_lines), rng.randint(0, 3))):
                    if target[2] <= 0:
                        continue
                    amount = target[2] if rng.random() < 0.6 else rng.randint(1, target[2])
                    target[2] -= amount
                    applied += amount
                    apps.append(
                        {"encounter": target[0], "line": target[1], "amount": money(amount)}
                    )
                extra = rng.randint(1000, 5000) if not apps or rng.random() < 0.2 else 0
                unapplied += extra
                applications += len(apps)
                w.add(
                    "receipts",
                    {
                        "id": f"R{receipt_no}",
                        "guarantor": gid,
                        "date": (last_service + dt.timedelta(days=rng.randint(1, 60))).isoformat(),
                        "amount": money(applied + extra),
                        "method": rng.choice(["card", "cash", "check"]),
                        "source": rng.choice(["office", "mail", "phone"]),
                        "applications": apps,
                    },
                )
            if unapplied and rng.random() < 0.1:
                receipt_no += 1
                refunds += 1
                w.add(
                    "receipts",
                    {
                        "id": f"R{receipt_no}",
                        "guarantor": gid,
                        "type": "refund",
                        "date": (last_service + dt.timedelta(days=90)).isoformat(),
                        "amount": money(rng.randint(1, unapplied)),
                        "method": "check",
                        "source": "office",
                    },
                )
        # Statements: none for some, up to two for others, 30 days apart.
        for k in range(rng.choices((0, 1, 2), weights=(3, 4, 3))[0]):
            statement_no += 1
            date = last_service + dt.timedelta(days=5 + 30 * k)
            balance = sum(line[2] for line in open_lines)
            w.add(
                "statements",
                {
                    "id": f"S{statement_no}",
                    "guarantor": gid,
                    "statement_date": date.isoformat(),
                    "due_date": (date + dt.timedelta(days=21)).isoformat(),
                    "statement_balance": money(balance),
                    "amount_due": money(balance * rng.choice((100, 100, 50)) // 100),
                },
            )
    w.join(out_path)
    shutil.rmtree(work, ignore_errors=True)
    counts = {name: w.counts[name] for name in SECTIONS}
    counts.update(
        lines=lines, applications=applications, refunds=refunds, in_collections=collections
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guarantors", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = generate(args.guarantors, args.out, args.seed)
    meta = {"guarantors": args.guarantors, "seed": args.seed, "counts": counts}
    meta["bytes"] = os.path.getsize(args.out)
    Path(f"{args.out}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"wrote {args.out}: {meta['bytes'] / 1e6:.1f} MB, {counts['lines']} lines "
        f"in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
