"""`pops demo`: the demo practice, loaded through the import, covers what it promises, and a
second run (even on a later day) changes nothing."""

import datetime as dt
import io
import json
import re
import subprocess
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.db.models import Count, Sum
from django.test import Client

from pops.api.models import ApiKey, digest
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.core.money import format_amount
from pops.demo.build import DEMO_API_KEY, SECOND_GROUP_SLUG, DemoInfo, build_demo
from pops.demo.document import PRACTICE_ID, TIME_ZONE, anchor_date, build_document
from pops.groups.models import Group
from pops.ledger.models import (
    Appointment,
    Encounter,
    Guarantor,
    Patient,
    Practice,
    Receipt,
    ServiceLine,
    Statement,
)
from pops.ledger.services.balances import Balances, current_balances, guarantor_balances

pytestmark = pytest.mark.django_db

CHICAGO = ZoneInfo(TIME_ZONE)


def build() -> DemoInfo:
    return build_demo(Actor.command("demo"))


@pytest.fixture
def demo() -> DemoInfo:
    return build()


@pytest.fixture
def practice(demo: DemoInfo) -> Practice:
    return Practice.objects.get(external_id=PRACTICE_ID)


@pytest.fixture
def balances(practice: Practice) -> dict[str, Balances]:
    """Every demo guarantor's balances under the default Group (new charges not included)."""
    return {
        g.external_id: guarantor_balances(g, include_new_charges=False)
        for g in Guarantor.objects.filter(practice=practice)
    }


def snapshot() -> dict[str, object]:
    """Row counts of every table POPS owns, and the full rows of the ledger, Groups and keys."""
    counts = {
        model._meta.label: model._default_manager.count()
        for app in ("core", "ledger", "groups", "api")
        for model in apps.get_app_config(app).get_models()
    }
    rows = {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for app in ("ledger", "groups", "api")
        for model in apps.get_app_config(app).get_models()
    }
    return {"counts": counts, "rows": rows}


# --- it builds ------------------------------------------------------------------------------


def test_the_demo_is_loaded_through_the_import(demo):
    assert demo.changed
    event = AuditEvent.objects.get(action="ledger.import.completed")
    assert event.practice_id == Practice.objects.get(external_id=PRACTICE_ID).pk
    assert event.actor_label == "pops demo"


def test_the_practice_is_demo_health_center_in_chicago(practice):
    assert (practice.name, practice.time_zone) == ("Demo Health Center", "America/Chicago")
    assert practice.is_prepared


def test_it_has_two_facilities_three_providers_and_an_agency(practice):
    models = apps.get_app_config("ledger")
    for name, count in [("Facility", 2), ("Provider", 3), ("CollectionAgency", 1)]:
        assert models.get_model(name)._default_manager.filter(practice=practice).count() == count


def test_it_has_at_least_25_guarantors_with_4_or_5_digit_ids(practice):
    ids = list(Guarantor.objects.filter(practice=practice).values_list("external_id", flat=True))
    assert len(ids) >= 25
    assert all(re.fullmatch(r"\d{4,5}", gid) for gid in ids), ids
    assert {len(gid) for gid in ids} == {4, 5}


def test_contacts_are_safe_examples(practice):
    for guarantor in Guarantor.objects.filter(practice=practice):
        assert guarantor.email == "" or guarantor.email.endswith("@example.com")
        assert guarantor.mobile == "" or re.fullmatch(r"\d{3}-555-01\d\d", guarantor.mobile)
    assert Guarantor.objects.filter(practice=practice, email="", mobile="").exists()


def test_the_document_is_the_same_for_the_same_anchor():
    anchor = dt.date(2026, 3, 10)
    assert build_document(anchor) == build_document(anchor)


def test_the_anchor_is_today_before_the_practice_exists():
    with time_machine.travel(dt.datetime(2026, 3, 11, 4, 30, tzinfo=dt.UTC), tick=False):
        assert anchor_date(None) == dt.date(2026, 3, 10)  # still the 10th in Chicago


# --- it covers what it promises ---------------------------------------------------------------


def test_one_guarantor_has_several_patients(practice):
    most = (
        Patient.objects.filter(practice=practice)
        .values("guarantor")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    assert most is not None
    assert most["n"] >= 3


def test_visits_happen_at_both_facilities_even_for_one_family(practice):
    encounters = Encounter.objects.filter(practice=practice)
    assert encounters.values("facility").distinct().count() == 2
    both = (
        encounters.values("guarantor")
        .annotate(n=Count("facility", distinct=True), p=Count("patient", distinct=True))
        .filter(n=2, p__gte=2)
    )
    assert both.exists()


def test_a_collection_placement_leaves_a_collection_balance_and_a_payable_rest(practice, balances):
    assert Encounter.objects.filter(practice=practice, collection_agency__isnull=False).exists()
    assert any(b.collection_balance > 0 and b.current_balance > 0 for b in balances.values())
    assert any(b.collection_balance > 0 and b.current_balance == 0 for b in balances.values())


def test_a_payment_larger_than_what_was_applied_leaves_unapplied_funds(practice, balances):
    partly = Receipt.objects.filter(practice=practice, type=Receipt.Type.PAYMENT).annotate(
        applied=Sum("applications__amount_cents", default=0)
    )
    assert any(r.applied and r.amount_cents > r.applied for r in partly)
    assert any(b.unapplied_funds > 0 and b.current_balance > 0 for b in balances.values())


def test_a_guarantor_with_history_has_a_zero_balance(practice, balances):
    paid_off = [
        gid
        for gid, b in balances.items()
        if b.current_balance == 0 and b.collection_balance == 0 and b.statement_balance
    ]
    assert paid_off


def test_a_guarantor_with_a_balance_has_no_statement_yet(practice, balances):
    fresh = [
        gid
        for gid, b in balances.items()
        if b.statement_balance is None and b.current_balance > 0 and b.amount_due == 0
    ]
    assert fresh
    assert not Statement.objects.filter(practice=practice, guarantor__external_id__in=fresh)


def test_there_are_paid_and_unpaid_statements(practice, balances):
    paid = [b for b in balances.values() if b.last_statement and b.amount_due == 0]
    unpaid = [b for b in balances.values() if b.last_statement and b.amount_due == b.last_statement]
    assert paid
    assert unpaid
    past_due = Statement.objects.filter(
        practice=practice, due_date__lt=anchor_date(practice), amount_due_cents__gt=0
    )
    assert past_due.exists()


def test_several_statements_and_a_payment_plan_are_present(practice, balances):
    assert (
        Statement.objects.filter(practice=practice)
        .values("guarantor")
        .annotate(n=Count("id"))
        .filter(n__gte=3)
        .exists()
    )
    assert any(
        b.last_statement is not None and 0 < b.last_statement < (b.statement_balance or 0)
        for b in balances.values()
    )


def test_some_lines_wait_on_insurance(practice):
    assert ServiceLine.objects.filter(practice=practice, pending_insurance_cents__gt=0).exists()


def test_appointments_lie_ahead_and_behind(practice):
    now = dt.datetime.now(dt.UTC)
    appointments = Appointment.objects.filter(practice=practice)
    assert appointments.filter(starts_at__gt=now, status__in=["scheduled", "confirmed"]).exists()
    assert appointments.filter(starts_at__lt=now, status="completed").exists()
    assert appointments.filter(starts_at__lt=now, status__in=["no-show", "cancelled"]).exists()


def test_a_refund_was_paid_out_of_unapplied_money(practice, balances):
    refund = Receipt.objects.get(practice=practice, type=Receipt.Type.REFUND)
    assert balances[refund.guarantor.external_id].unapplied_funds == 0


def test_a_guarantor_opted_out_of_texts(practice):
    assert Guarantor.objects.filter(practice=practice, text_opt_out=True).exclude(mobile="")


def test_statement_figures_agree_with_the_lines(practice, balances):
    """Each statement holds 0 <= amount due <= statement balance; where nothing happened after
    the latest statement, its balance is today's Current Balance."""
    later: dict[int, dt.date] = defaultdict(lambda: dt.date.min)
    events = [
        *Encounter.objects.filter(practice=practice).values_list("guarantor", "service_date"),
        *Encounter.objects.filter(practice=practice).values_list(
            "guarantor", "collections_sent_on"
        ),
        *Receipt.objects.filter(practice=practice).values_list("guarantor", "date"),
    ]
    for gid, day in events:
        if day is not None:
            later[gid] = max(later[gid], day)
    checked = 0
    for guarantor in Guarantor.objects.filter(practice=practice):
        statements = list(guarantor.statements.order_by("statement_date"))
        for statement in statements:
            assert 0 <= statement.amount_due_cents <= statement.statement_balance_cents
            assert statement.due_date == statement.statement_date + dt.timedelta(days=21)
        if statements and later[guarantor.pk] <= statements[-1].statement_date:
            figures = balances[guarantor.external_id]
            assert statements[-1].statement_balance_cents == figures.current_balance, guarantor
            checked += 1
    assert checked >= 5


def test_every_balance_keeps_its_order(balances):
    for b in balances.values():
        assert b.current_balance >= b.amount_due >= 0
        assert b.unapplied_funds >= 0
        assert b.collection_balance >= 0


def test_the_showcase_guarantors_show_what_they_say(demo, balances):
    shown = {h.guarantor_id: h for h in demo.highlights}
    assert sum(h.featured for h in demo.highlights) == 5
    assert balances["1002"].collection_balance > 0
    assert balances["1003"].unapplied_funds > 0
    assert balances["1004"].current_balance == 0
    assert balances["1005"].statement_balance is None
    assert balances["1014"].current_balance == 0
    assert balances["1014"].collection_balance > 0
    for gid, h in shown.items():
        assert (h.current_balance, h.amount_due) == (
            balances[gid].current_balance,
            balances[gid].amount_due,
        )


# --- Groups and the API key ---------------------------------------------------------------------


def test_two_groups_carry_different_branding(practice):
    default = Group.objects.get(practice=practice, is_default=True)
    second = Group.objects.get(practice=practice, slug=SECOND_GROUP_SLUG)
    assert default.name == "Demo Health Center"
    assert default.footer_phone
    assert default.footer_email
    assert not default.dark
    assert second.dark
    assert (second.slug, second.name) != (default.slug, default.name)
    assert second.primary_color != default.primary_color
    assert second.background_color != default.background_color
    assert second.show_collections
    assert second.show_escrow
    assert second.include_new_charges
    assert not default.include_new_charges


def test_the_published_key_answers_for_a_guarantor(demo, balances):
    client = Client()
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    response = client.get("/api/v1/guarantors/1001/balances", headers=headers)
    assert response.status_code == 200
    expected = balances["1001"]
    assert response.json()["current_balance"] == format_amount(expected.current_balance)
    assert response.json()["amount_due"] == format_amount(expected.amount_due)


def test_the_second_group_counts_new_charges_in_amount_due(demo):
    client = Client()
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    path = "/api/v1/guarantors/1006/balances"
    plain = client.get(path, headers=headers).json()
    lakeside = client.get(path, {"group": SECOND_GROUP_SLUG}, headers=headers).json()
    assert plain["amount_due"] == "0.00"
    assert lakeside["amount_due"] == plain["current_balance"] != "0.00"


def test_the_key_is_stored_once_and_only_as_a_digest(demo):
    key = ApiKey.objects.get(key_digest=digest(DEMO_API_KEY))
    assert key.practice.external_id == PRACTICE_ID
    build()
    assert ApiKey.objects.count() == 1


# --- running it again changes nothing ----------------------------------------------------------


def test_a_second_run_changes_nothing(demo):
    before = snapshot()
    again = build()
    assert not again.changed
    assert snapshot() == before


def test_a_second_run_on_a_later_day_changes_nothing():
    with time_machine.travel(dt.datetime(2026, 3, 10, 23, 30, tzinfo=CHICAGO), tick=False):
        first = build()
    before = snapshot()
    with time_machine.travel(dt.datetime(2026, 5, 2, 9, 0, tzinfo=CHICAGO), tick=False):
        again = build()
    assert first.anchor == again.anchor == dt.date(2026, 3, 10)
    assert not again.changed
    assert snapshot() == before


def test_a_changed_group_is_put_back(demo, practice):
    Group.objects.filter(practice=practice, slug=SECOND_GROUP_SLUG).update(dark=False)
    assert build().changed
    assert Group.objects.get(practice=practice, slug=SECOND_GROUP_SLUG).dark


# --- the command --------------------------------------------------------------------------------


def test_the_command_prints_what_a_person_needs_next():
    out = io.StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000" in text
    assert DEMO_API_KEY in text
    assert (
        f'curl -H "Authorization: Bearer {DEMO_API_KEY}" '
        '"http://127.0.0.1:8000/api/v1/guarantors/1001/balances"'
    ) in text
    for slug in Group.objects.values_list("slug", flat=True):
        assert slug in text
    table = [line for line in text.splitlines() if re.match(r"  \d{4,5} ", line)]
    assert len(table) == 5
    assert "Next steps" in text


def test_the_command_says_when_nothing_changed():
    call_command("demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo", "--all", stdout=out)
    assert "nothing changed" in out.getvalue()
    assert len([line for line in out.getvalue().splitlines() if re.match(r"  10\d\d ", line)]) > 5


@pytest.mark.django_db(transaction=True)
def test_the_printed_payment_commands_pay_against_a_running_server(live_server):
    """What `pops demo` tells a person to paste takes a real payment (curl and bash, as typed)."""
    info = build_demo(Actor.command("demo"))
    before = guarantor_balances(
        Guarantor.objects.get(external_id="1001"), include_new_charges=False
    ).current_balance
    script = "\n".join(info.pay_commands()).replace("http://127.0.0.1:8000", live_server.url)

    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "Paid"
    assert answer["amount"] == "10.00"
    after = guarantor_balances(
        Guarantor.objects.get(external_id="1001"), include_new_charges=False
    ).current_balance
    assert before - after == 1000


def test_one_guarantors_balances_agree_with_the_practice_wide_figures():
    """The one-statement SQL of `guarantor_balances` and the ORM aggregates of
    `current_balances` (the statement run's) compute the same Current Balance."""
    build_demo(Actor.command("demo"))
    practice = Practice.objects.get(external_id=PRACTICE_ID)
    wide = current_balances(practice.pk)

    guarantors = list(Guarantor.objects.filter(practice=practice))
    assert len(guarantors) >= 25
    assert any(wide.values())
    for g in guarantors:
        one = guarantor_balances(g, include_new_charges=False).current_balance
        assert one == wide.get(g.pk, 0), g.external_id
