"""The demo practice's import document, built from one anchor date so that it never drifts.

Every date is a number of days before the anchor (appointments may also lie after it). The anchor
is the practice's creation date once the practice exists, so running `pops demo` again on a later
day produces the very same document. Statement figures are what the statement run would have
written on the statement date: the guarantor's Current Balance as it stood that day (lines served
by then and not yet in collections, less the money received by then).
"""

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pops.core import clock
from pops.core.money import format_amount

if TYPE_CHECKING:
    from pops.ledger.models import Practice

PRACTICE_ID = "demo"
PRACTICE_NAME = "Demo Health Center"
TIME_ZONE = "America/Chicago"
STATEMENT_TERMS_DAYS = 21

FACILITIES = {
    "north": "Demo Health Center - North Clinic",
    "lakeside": "Demo Health Center - Lakeside Clinic",
}
PROVIDERS = {
    "patel": "Maya Patel, MD",
    "okafor": "Samuel Okafor, DO",
    "lindqvist": "Grace Lindqvist, NP",
}
AGENCIES = {"prairie": "Prairie Recovery Services"}

# Procedure code -> (description, fee in cents).
PROCEDURES = {
    "99203": ("New patient office visit, low complexity", 17500),
    "99204": ("New patient office visit, moderate complexity", 26000),
    "99213": ("Office visit, established patient, low complexity", 13500),
    "99214": ("Office visit, established patient, moderate complexity", 19500),
    "99393": ("Preventive visit, age 5-11", 21000),
    "99396": ("Preventive visit, age 40-64", 26000),
    "90686": ("Influenza vaccine, quadrivalent", 4500),
    "90471": ("Immunization administration", 2800),
    "87880": ("Rapid strep test", 3500),
    "85025": ("Complete blood count (CBC)", 3800),
    "80053": ("Comprehensive metabolic panel", 5200),
    "80061": ("Lipid panel", 4800),
    "81002": ("Urinalysis", 1200),
    "36415": ("Venipuncture", 1500),
    "93000": ("Electrocardiogram with interpretation", 9500),
    "71046": ("Chest X-ray, 2 views", 14500),
    "20610": ("Joint injection, major joint", 22000),
    "11102": ("Skin biopsy, tangential", 18500),
    "12001": ("Simple wound repair, up to 2.5 cm", 31000),
    "97110": ("Therapeutic exercise, 15 minutes", 8500),
}

# (code, patient owes in cents, pending insurance in cents)
Charge = tuple[str, int, int]


def anchor_date(practice: "Practice | None") -> dt.date:
    """The date every demo date counts from: the practice's creation date (practice-local) once
    it exists, else today in the demo's time zone."""
    if practice is not None:
        return clock.local_date(practice.time_zone, practice.created_at)
    return clock.local_date(TIME_ZONE)


@dataclass(frozen=True)
class Highlight:
    """A guarantor picked to show one thing, and whether `pops demo` lists it by default."""

    guarantor_id: str
    shows: str
    featured: bool


@dataclass(frozen=True)
class DemoDocument:
    anchor: dt.date
    data: dict[str, Any]
    highlights: list[Highlight]


def build_document(anchor: dt.date) -> DemoDocument:
    """The whole demo practice as an import document (docs/import.md), dated from `anchor`."""
    book = _Book(anchor)
    _showcase(book)
    _everyday(book)
    return DemoDocument(anchor, book.document(), book.highlights)


# --- the ledger being written ------------------------------------------------------------------


@dataclass
class _Line:
    line: int
    code: str
    billed: int
    adjusted: int
    insurance_paid: int
    pending: int

    @property
    def owed(self) -> int:
        return self.billed - self.adjusted - self.insurance_paid - self.pending


@dataclass
class _Visit:
    number: str
    guarantor: str
    patient: str
    facility: str
    provider: str
    service_date: dt.date
    lines: list[_Line]
    collections: tuple[str, dt.date] | None = None

    def open_on(self, day: dt.date) -> bool:
        """Served by `day` and not in collections on that day."""
        return self.service_date <= day and not (
            self.collections is not None and self.collections[1] <= day
        )


@dataclass
class _Receipt:
    id: str
    guarantor: str
    date: dt.date
    amount: int
    type: str
    method: str
    source: str
    applications: list[tuple[_Visit, _Line, int]] = field(default_factory=list)


@dataclass
class _Statement:
    id: str
    guarantor: str
    statement_date: dt.date
    amount_due_cap: int | None


class _Book:
    """Collects the demo's rows in the document's own terms, checking the money as it goes."""

    def __init__(self, anchor: dt.date):
        self.anchor = anchor
        self.guarantors: list[dict[str, Any]] = []
        self.patients: list[dict[str, Any]] = []
        self.patient_guarantor: dict[str, str] = {}
        self.visits: list[_Visit] = []
        self.receipts: list[_Receipt] = []
        self.statements: list[_Statement] = []
        self.appointments: list[dict[str, Any]] = []
        self.highlights: list[Highlight] = []
        self.mobiles = 100
        self.counters = {"encounter": 40100, "receipt": 300100, "statement": 500100, "appt": 80100}

    def _next(self, what: str) -> str:
        self.counters[what] += 1
        return str(self.counters[what])

    def day(self, days_ago: int) -> dt.date:
        return self.anchor - dt.timedelta(days=days_ago)

    # --- people -------------------------------------------------------------------------------

    def guarantor(
        self,
        gid: str,
        first: str,
        last: str,
        born: str,
        *,
        preferred: str = "",
        area: str = "312",
        contact: bool = True,
        text_opt_out: bool = False,
    ) -> str:
        """A guarantor who is also the first patient of the account; returns the patient id."""
        self.mobiles += 1
        handle = f"{preferred or first}.{last}".lower().replace("'", "").replace(" ", "")
        self.guarantors.append(
            {
                "id": gid,
                "first_name": first,
                "preferred_name": preferred,
                "last_name": last,
                "email": f"{handle}@example.com" if contact else "",
                "mobile": f"{area}-555-{self.mobiles:04d}" if contact else "",
                "text_opt_out": text_opt_out,
            }
        )
        return self.patient(gid, first, last, born)

    def shows(self, gid: str, what: str, *, featured: bool = False) -> None:
        """Say what a guarantor demonstrates (`featured` ones are listed by `pops demo`)."""
        self.highlights.append(Highlight(gid, what, featured))

    def patient(self, gid: str, first: str, last: str, born: str) -> str:
        pid = f"{gid}-{sum(1 for p in self.patients if p['guarantor'] == gid) + 1}"
        self.patients.append(
            {
                "id": pid,
                "guarantor": gid,
                "first_name": first,
                "last_name": last,
                "birth_date": born,
            }
        )
        self.patient_guarantor[pid] = gid
        return pid

    # --- visits and money ---------------------------------------------------------------------

    def visit(
        self,
        patient: str,
        days_ago: int,
        facility: str,
        provider: str,
        charges: list[Charge],
        *,
        self_pay: bool = False,
    ) -> _Visit:
        """An encounter (and the completed appointment it came from). Each charge bills the
        code's fee; the patient owes the given share, insurance pays or adjusts the rest."""
        lines = []
        for number, (code, owes, pending) in enumerate(charges, start=1):
            billed = PROCEDURES[code][1]
            rest = billed - owes - pending
            assert rest >= 0, f"{code}: the patient cannot owe more than the fee"
            adjusted = rest if self_pay else rest * 45 // 100
            lines.append(_Line(number, code, billed, adjusted, rest - adjusted, pending))
        visit = _Visit(
            self._next("encounter"),
            self.patient_guarantor[patient],
            patient,
            facility,
            provider,
            self.day(days_ago),
            lines,
        )
        self.visits.append(visit)
        seq = int(visit.number)
        at = f"{8 + seq % 9:02d}:{seq % 4 * 15:02d}"
        self.appointment(patient, -days_ago, at, facility, provider, "completed")
        return visit

    def to_collections(self, visit: _Visit, days_ago: int, agency: str = "prairie") -> None:
        assert self._remaining(visit.lines) > 0, "only a visit with a balance goes to collections"
        visit.collections = (agency, self.day(days_ago))

    def _applied(self, line: _Line) -> int:
        return sum(
            amount for r in self.receipts for _, target, amount in r.applications if target is line
        )

    def _remaining(self, lines: list[_Line]) -> int:
        return sum(max(0, line.owed - self._applied(line)) for line in lines)

    def open_on(self, gid: str, day: dt.date) -> int:
        """What remains on the guarantor's open lines served by `day` (applications so far)."""
        return sum(
            self._remaining(v.lines) for v in self.visits if v.guarantor == gid and v.open_on(day)
        )

    def pay(
        self,
        gid: str,
        days_ago: int,
        amount: int,
        *,
        applied: int | None = None,
        method: str = "credit card",
        source: str = "office",
    ) -> None:
        """A payment; `applied` of it (default: all) goes on the oldest open lines, the rest
        stays unapplied."""
        date = self.day(days_ago)
        to_apply = amount if applied is None else applied
        assert to_apply <= amount
        assert to_apply <= self.open_on(gid, date), f"{gid}: nothing that large to apply to"
        receipt = _Receipt(self._next("receipt"), gid, date, amount, "payment", method, source)
        visits = sorted(
            (v for v in self.visits if v.guarantor == gid and v.open_on(date)),
            key=lambda v: (v.service_date, int(v.number)),
        )
        for visit in visits:
            for line in visit.lines:
                take = min(to_apply, max(0, line.owed - self._applied(line)))
                if take:
                    receipt.applications.append((visit, line, take))
                    to_apply -= take
        self.receipts.append(receipt)

    def refund(self, gid: str, days_ago: int, amount: int, *, method: str = "check") -> None:
        date = self.day(days_ago)
        assert amount <= self._unapplied(gid, date), f"{gid}: refund larger than unapplied funds"
        self.receipts.append(
            _Receipt(self._next("receipt"), gid, date, amount, "refund", method, "office")
        )

    def _unapplied(self, gid: str, day: dt.date) -> int:
        total = 0
        for r in self.receipts:
            if r.guarantor == gid and r.date <= day:
                total += r.amount if r.type == "payment" else -r.amount
                total -= sum(amount for _, _, amount in r.applications)
        return total

    def balance_on(self, gid: str, day: dt.date) -> int:
        """Current Balance as it stood at the end of `day`."""
        owed = 0
        for visit in self.visits:
            if visit.guarantor != gid or not visit.open_on(day):
                continue
            for line in visit.lines:
                paid = sum(
                    amount
                    for r in self.receipts
                    if r.guarantor == gid and r.date <= day
                    for _, target, amount in r.applications
                    if target is line
                )
                owed += max(0, line.owed - paid)
        return max(0, owed - self._unapplied(gid, day))

    def statement(self, gid: str, days_ago: int, *, amount_due_cap: int | None = None) -> None:
        self.statements.append(
            _Statement(self._next("statement"), gid, self.day(days_ago), amount_due_cap)
        )

    def statement_cycle(self, gid: str, cycle: list[int]) -> None:
        """Statements on each cycle day (days ago) on which the guarantor owed something, as
        the monthly statement run would have written them. Call after the money is in."""
        for days_ago in cycle:
            if self.balance_on(gid, self.day(days_ago)) > 0:
                self.statement(gid, days_ago)

    def appointment(
        self, patient: str, days_ahead: int, at: str, facility: str, provider: str, status: str
    ) -> None:
        day = self.anchor + dt.timedelta(days=days_ahead)
        self.appointments.append(
            {
                "id": self._next("appt"),
                "patient": patient,
                "facility": facility,
                "provider": provider,
                "starts_at": f"{day.isoformat()}T{at}:00",
                "status": status,
            }
        )

    # --- the document -------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        return {
            "practice": {"id": PRACTICE_ID, "name": PRACTICE_NAME, "time_zone": TIME_ZONE},
            "facilities": [{"id": k, "name": v} for k, v in FACILITIES.items()],
            "providers": [{"id": k, "name": v} for k, v in PROVIDERS.items()],
            "collection_agencies": [{"id": k, "name": v} for k, v in AGENCIES.items()],
            "guarantors": self.guarantors,
            "patients": self.patients,
            "encounters": [self._encounter(v) for v in self.visits],
            "receipts": [self._receipt(r) for r in self.receipts],
            "statements": [self._statement(s) for s in self.statements],
            "appointments": self.appointments,
        }

    @staticmethod
    def _encounter(visit: _Visit) -> dict[str, Any]:
        return {
            "number": visit.number,
            "patient": visit.patient,
            "facility": visit.facility,
            "provider": visit.provider,
            "service_date": visit.service_date.isoformat(),
            "collections": (
                {"agency": visit.collections[0], "sent_on": visit.collections[1].isoformat()}
                if visit.collections
                else None
            ),
            "lines": [
                {
                    "line": line.line,
                    "code": line.code,
                    "description": PROCEDURES[line.code][0],
                    "billed": format_amount(line.billed),
                    "adjusted": format_amount(line.adjusted),
                    "insurance_paid": format_amount(line.insurance_paid),
                    "pending_insurance": format_amount(line.pending),
                }
                for line in visit.lines
            ],
        }

    @staticmethod
    def _receipt(receipt: _Receipt) -> dict[str, Any]:
        return {
            "id": receipt.id,
            "guarantor": receipt.guarantor,
            "type": receipt.type,
            "date": receipt.date.isoformat(),
            "amount": format_amount(receipt.amount),
            "method": receipt.method,
            "source": receipt.source,
            "applications": [
                {"encounter": visit.number, "line": line.line, "amount": format_amount(amount)}
                for visit, line, amount in receipt.applications
            ],
        }

    def _statement(self, statement: _Statement) -> dict[str, Any]:
        balance = self.balance_on(statement.guarantor, statement.statement_date)
        due = (
            balance if statement.amount_due_cap is None else min(balance, statement.amount_due_cap)
        )
        return {
            "id": statement.id,
            "guarantor": statement.guarantor,
            "statement_date": statement.statement_date.isoformat(),
            "due_date": (
                statement.statement_date + dt.timedelta(days=STATEMENT_TERMS_DAYS)
            ).isoformat(),
            "statement_balance": format_amount(balance),
            "amount_due": format_amount(due),
        }


# --- the guarantors ----------------------------------------------------------------------------


def _showcase(b: _Book) -> None:
    """Hand-made accounts, each showing one thing POPS must get right."""
    maria = b.guarantor("1001", "Maria", "Alvarez", "1984-03-12", area="312")
    b.shows("1001", "Family: 3 patients, both facilities, paid since statement", featured=True)
    sofia = b.patient("1001", "Sofia", "Alvarez", "2014-09-02")
    mateo = b.patient("1001", "Mateo", "Alvarez", "2018-06-21")
    b.visit(mateo, 70, "north", "okafor", [("99213", 4000, 0), ("87880", 1500, 0)])
    b.visit(sofia, 48, "lakeside", "lindqvist", [("99393", 2500, 0), ("85025", 1800, 0)])
    b.statement("1001", 40)
    b.visit(maria, 20, "lakeside", "patel", [("99214", 6500, 0)])
    b.pay("1001", 15, 5000, source="phone")
    b.appointment(mateo, 6, "15:30", "north", "okafor", "scheduled")
    b.appointment(sofia, 27, "08:45", "lakeside", "lindqvist", "scheduled")

    derek = b.guarantor("1002", "Derek", "Holloway", "1979-11-30", area="773")
    b.shows("1002", "Collections: old visit with an agency, new visit payable", featured=True)
    old = b.visit(derek, 160, "north", "patel", [("20610", 12000, 0), ("99213", 4000, 0)])
    b.statement("1002", 130)
    b.statement("1002", 100)
    b.to_collections(old, 40)
    b.visit(derek, 12, "lakeside", "okafor", [("99213", 4000, 0), ("81002", 1200, 0)])
    b.statement("1002", 5)

    priya = b.guarantor("1003", "Priya", "Raman", "1990-07-08", area="630")
    b.shows("1003", "Unapplied funds: a check only partly posted", featured=True)
    b.visit(priya, 32, "north", "lindqvist", [("99214", 8000, 0), ("80053", 4000, 0)])
    b.statement("1003", 25)
    b.visit(priya, 9, "lakeside", "patel", [("11102", 18000, 0)])
    b.pay("1003", 8, 20000, applied=8000, method="check", source="mail")

    thomas = b.guarantor("1004", "Thomas", "Becker", "1968-02-17", preferred="Tom", area="312")
    b.shows("1004", "Zero balance: statement paid in full")
    b.visit(
        thomas,
        60,
        "north",
        "patel",
        [("99396", 0, 0), ("80061", 3200, 0), ("36415", 800, 0), ("99213", 4500, 0)],
    )
    b.statement("1004", 50)
    b.pay("1004", 38, 8500, method="check", source="mail")
    b.appointment(thomas, 34, "07:30", "north", "patel", "scheduled")

    hannah = b.guarantor("1005", "Hannah", "Kim", "1996-05-25", area="773")
    b.shows("1005", "No statement yet: Amount Due 0.00 until the first one", featured=True)
    b.visit(
        hannah,
        4,
        "lakeside",
        "lindqvist",
        [("99203", 7500, 0), ("80053", 0, 3000), ("36415", 1500, 0)],
    )
    b.appointment(hannah, 10, "10:15", "lakeside", "lindqvist", "confirmed")

    bob = b.guarantor("1006", "Robert", "Jenkins", "1958-12-03", preferred="Bob", area="630")
    b.shows("1006", "Statement paid, new visit since: Amount Due differs by Group", featured=True)
    b.visit(bob, 55, "north", "okafor", [("99214", 9500, 0), ("93000", 4500, 0)])
    b.statement("1006", 45)
    b.pay("1006", 30, 14000, source="phone")
    b.visit(bob, 9, "lakeside", "okafor", [("99213", 6500, 0)])

    linda = b.guarantor("1007", "Linda", "Nowak", "1972-04-19", area="312")
    b.shows("1007", "Unpaid statements: three, nothing paid, past due")
    b.visit(linda, 85, "lakeside", "patel", [("12001", 18500, 0), ("99213", 4000, 0)])
    for days_ago in (70, 40, 10):
        b.statement("1007", days_ago)

    james = b.guarantor("1008", "James", "Whitfield", "1961-08-14", area="773")
    b.shows("1008", "Pending insurance: most of the visit waits on the insurer")
    b.visit(
        james, 16, "north", "patel", [("99214", 4000, 0), ("93000", 0, 9500), ("71046", 0, 14500)]
    )
    b.statement("1008", 10)

    aisha = b.guarantor("1009", "Aisha", "Mohammed", "1988-01-29", area="630")
    b.shows("1009", "Appointments: upcoming and past (completed, no-show, cancelled)")
    b.appointment(aisha, -60, "09:30", "north", "lindqvist", "no-show")
    b.appointment(aisha, -45, "14:00", "north", "lindqvist", "cancelled")
    b.visit(aisha, 27, "lakeside", "lindqvist", [("99213", 3000, 0)])
    b.pay("1009", 27, 1500)
    b.statement("1009", 10)
    b.appointment(aisha, 1, "09:00", "lakeside", "lindqvist", "confirmed")
    b.appointment(aisha, 21, "13:15", "north", "patel", "scheduled")

    kevin = b.guarantor("1010", "Kevin", "O'Brien", "1983-10-10", area="312")
    b.shows("1010", "Refund: a duplicate check returned")
    b.visit(kevin, 44, "north", "okafor", [("99213", 6000, 0)])
    b.pay("1010", 44, 6000)
    b.pay("1010", 30, 6000, applied=0, method="check", source="mail")
    b.refund("1010", 21, 6000)
    b.visit(kevin, 6, "north", "okafor", [("87880", 3500, 0)])

    grace = b.guarantor("1011", "Grace", "Liu", "1993-06-02", area="773", text_opt_out=True)
    b.shows("1011", "Text opt-out: email only, never text messages")
    b.visit(grace, 35, "lakeside", "patel", [("99214", 7000, 0)])
    b.statement("1011", 25)
    b.pay("1011", 12, 2000, source="phone")

    marcus = b.guarantor("1012", "Marcus", "Brown", "1975-09-21", area="630")
    b.shows("1012", "Payment plan: Amount Due is one installment")
    b.visit(marcus, 120, "north", "patel", [("20610", 22000, 0), ("99214", 9000, 0)])
    b.visit(marcus, 90, "north", "patel", [("20610", 22000, 0)])
    b.statement("1012", 70, amount_due_cap=10000)
    b.pay("1012", 60, 10000)
    b.statement("1012", 40, amount_due_cap=10000)
    b.pay("1012", 30, 10000)
    b.statement("1012", 10, amount_due_cap=10000)

    dorothy = b.guarantor("1013", "Dorothy", "Gallagher", "1946-01-05", contact=False)
    b.shows("1013", "No email or mobile on file: paper statements only")
    b.visit(
        dorothy,
        50,
        "lakeside",
        "okafor",
        [("99214", 3500, 0), ("85025", 1000, 0), ("36415", 500, 0)],
    )
    b.statement("1013", 40)

    tyrone = b.guarantor("1014", "Tyrone", "Jackson", "1987-03-03", area="773")
    b.shows("1014", "All in collections: nothing payable in POPS")
    old = b.visit(tyrone, 210, "lakeside", "lindqvist", [("99204", 15000, 0)])
    for days_ago in (180, 150, 120):
        b.statement("1014", days_ago)
    b.to_collections(old, 80)


_FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Ethan",
    "Isabella",
    "Lucas",
    "Mia",
    "Jackson",
    "Amelia",
    "Aiden",
    "Harper",
    "Elijah",
    "Evelyn",
    "Daniel",
    "Abigail",
    "Samuel",
    "Chloe",
    "Gabriel",
    "Zoe",
    "Andre",
    "Fatima",
    "Wei",
    "Yusuf",
    "Rosa",
    "Dmitri",
    "Keisha",
    "Hiroshi",
    "Lucia",
]
_LAST = [
    "Johnson",
    "Martinez",
    "Nguyen",
    "Kowalski",
    "Washington",
    "Schmidt",
    "Hernandez",
    "Patel",
    "Murphy",
    "Rossi",
    "Chen",
    "Williams",
    "Garcia",
    "Novak",
    "Adeyemi",
    "Sullivan",
    "Park",
    "Fischer",
    "Ramirez",
    "Kaminski",
    "Thompson",
    "Lopez",
    "Mensah",
    "Romero",
]
_EVERYDAY_CODES: list[tuple[str, list[int]]] = [
    ("99213", [2500, 3000, 4000]),
    ("99214", [4000, 5500, 7000]),
    ("85025", [0, 1200]),
    ("80053", [0, 1800]),
    ("36415", [500, 800]),
    ("90686", [0]),
    ("97110", [3000, 4500]),
    ("81002", [0, 600]),
]
_CYCLE = [100, 70, 40, 10]  # the monthly statement run, in days before the anchor


def _everyday(b: _Book, count: int = 16) -> None:
    """Ordinary accounts, generated from a fixed seed: the same on every run."""
    rng = random.Random(8_675_309)  # not for security: a fixed, reproducible demo
    gid = 20_000
    names = rng.sample([(f, last) for f in _FIRST for last in _LAST], count)
    facilities, providers = sorted(FACILITIES), sorted(PROVIDERS)
    for first, last in names:
        gid += rng.randint(17, 389)
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 50))
        patients = [
            b.guarantor(str(gid), first, last, born.isoformat(), area=rng.choice(["312", "773"]))
        ]
        if rng.random() < 0.4:
            child = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 14))
            patients.append(b.patient(str(gid), rng.choice(_FIRST), last, child.isoformat()))
        for days_ago in sorted(rng.sample(range(15, 200), rng.randint(1, 3)), reverse=True):
            charges: list[Charge] = []
            for code, owes in rng.sample(_EVERYDAY_CODES, rng.randint(1, 3)):
                share = rng.choice(owes)
                rest = PROCEDURES[code][1] - share
                pending = rest // 2 if rng.random() < 0.15 else 0
                charges.append((code, share, pending))
            b.visit(
                rng.choice(patients),
                days_ago,
                rng.choice(facilities),
                rng.choice(providers),
                charges,
            )
            if rng.random() < 0.6:
                paid_on = max(days_ago - rng.randint(5, 30), 1)
                due = b.open_on(str(gid), b.day(paid_on))
                amount = min(due, rng.choice([due, due // 2 // 100 * 100, 2500]))
                if amount > 0:
                    b.pay(str(gid), paid_on, amount, method=rng.choice(["credit card", "check"]))
        b.statement_cycle(str(gid), _CYCLE)
        if rng.random() < 0.5:
            hour = rng.randint(8, 16)
            b.appointment(
                patients[0],
                rng.randint(1, 45),
                f"{hour:02d}:{rng.choice([0, 30]):02d}",
                rng.choice(facilities),
                rng.choice(providers),
                "scheduled",
            )
