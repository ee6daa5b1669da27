"""POST /api/v1/payments: one payment per Idempotency-Key, answered as its receipt (issue 3,
item 10; S-29, S-30)."""

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pops.api.payments_io import PaymentIn
from pops.core import clock
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt, ReferenceBatch
from pops.ledger.services.balances import guarantor_balances
from pops.payments.gateways.base import DECLINE_MESSAGES, DeclineCode, WalletKind
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import MerchantAccount, PaymentAttempt, StoredCard
from pops.payments.services.reconcile import reconcile
from tests.conftest import ApiClient, run_import
from tests.payments.conftest import (
    APPROVED,
    DECLINED,
    EXPIRED_CARD,
    INCORRECT_CVV,
    INSUFFICIENT_FUNDS,
    PROCESSING_ERROR,
    TIMES_OUT,
    card_token,
    run_concurrently,
    wallet_payload,
)
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments"


def practice_document(practice_id: str = "p1", billed: str = "500.00") -> dict[str, Any]:
    """Guarantor 2010 owes $400.00 (billed less $100.00 insurance) on one line."""
    document = small_document(practice_id)
    document["encounters"][0]["lines"][0]["billed"] = billed
    return document


def prepared_practice(
    practice_id: str = "p1", billed: str = "500.00", **group_options: Any
) -> Practice:
    practice = run_import(practice_document(practice_id, billed)).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    if group_options:
        Group.objects.filter(practice=practice, is_default=True).update(**group_options)
    return practice


def body(**fields: Any) -> dict[str, Any]:
    """A payment of $20.00 by guarantor 2010 with a fresh approved card token."""
    fields.setdefault("guarantor", "2010")
    fields.setdefault("amount", "20.00")
    if "stored_card" not in fields:
        fields.setdefault("payment_token", card_token(APPROVED))
    return fields


def post(api: ApiClient, payload: Any, key: str | None = "key-1", raw: bytes | None = None):
    headers = dict(api.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    data = raw if raw is not None else json.dumps(payload)
    return api.client.post(URL, data=data, content_type="application/json", headers=headers)


def balance(external_id: str = "2010") -> int:
    guarantor = Guarantor.objects.get(external_id=external_id, practice__external_id="p1")
    return guarantor_balances(guarantor, include_new_charges=False).current_balance


def nothing_was_written() -> bool:
    return not PaymentAttempt.objects.exists() and not Receipt.objects.filter(made_in_pops=True)


@pytest.fixture
def practice() -> Practice:
    return prepared_practice()


@pytest.fixture
def api(api_for, practice) -> ApiClient:
    return api_for(practice)


# --- 201 Paid, 201 Unsuccessful, 202 Pending -----------------------------------------------------


def test_an_approved_card_answers_201_paid_with_its_receipt_and_todays_batch(api, practice):
    response = post(api, body())

    assert response.status_code == 201
    answer = response.json()
    receipt = Receipt.objects.get(made_in_pops=True)
    batch = ReferenceBatch.objects.get(is_pops=True)
    assert answer == {
        "receipt_number": receipt.number,
        "status": "Paid",
        "amount": "20.00",
        "transaction_numbers": [Transaction.objects.get().transaction_id],
        "reference_batch": {
            "id": str(batch.pk),
            "date": clock.local_date(practice.time_zone).isoformat(),
            "description": "API Payments",
            "user": "POPS",
            "status": "Open",
        },
        "message": None,
    }
    assert balance() == 38_000


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (DECLINED, DeclineCode.DECLINED),
        (INSUFFICIENT_FUNDS, DeclineCode.INSUFFICIENT_FUNDS),
        (EXPIRED_CARD, DeclineCode.EXPIRED_CARD),
        (INCORRECT_CVV, DeclineCode.INCORRECT_CVV),
        (PROCESSING_ERROR, DeclineCode.PROCESSING_ERROR),
    ],
)
def test_a_decline_answers_201_unsuccessful_with_a_message_the_patient_may_read(api, card, code):
    response = post(api, body(payment_token=card_token(card)))

    assert response.status_code == 201
    receipt = Receipt.objects.get(made_in_pops=True)
    assert response.json() == {
        "receipt_number": receipt.number,
        "status": "Unsuccessful",
        "amount": "0.00",
        "transaction_numbers": [],
        "reference_batch": None,
        "message": DECLINE_MESSAGES[code],
    }
    assert receipt.status == Receipt.Status.UNSUCCESSFUL
    assert receipt.amount_cents == 0
    assert not ReferenceBatch.objects.exists()
    assert balance() == 40_000


def test_an_unanswered_charge_answers_202_pending_never_failed(api):
    response = post(api, body(payment_token=card_token(TIMES_OUT)))

    assert response.status_code == 202
    assert response.json() == {"status": "Pending", "receipt_number": None}
    assert PaymentAttempt.objects.get().status == PaymentAttempt.Status.UNKNOWN
    assert not Receipt.objects.filter(made_in_pops=True).exists()


@pytest.mark.parametrize("fault", list(faults.Fault))
def test_every_gateway_fault_answers_pending_or_a_clear_outcome_never_500(api, fault):
    with faults.inject(fault):
        response = post(api, body())

    # 503 only when nothing reached the gateway: then nothing was written either.
    expected = (503,) if fault == faults.Fault.CONNECTION_REFUSED else (201, 202)
    assert response.status_code in expected, response.json()
    assert Transaction.objects.filter(status="approved").count() <= 1


def test_a_gateway_that_cannot_be_reached_answers_503_and_the_same_key_pays_later(api):
    payload = body()
    with faults.inject(faults.Fault.CONNECTION_REFUSED):
        response = post(api, payload)

    assert response.status_code == 503
    assert response.json() == {
        "errors": [
            {
                "path": "",
                "message": "payments cannot be taken right now and nothing was charged; "
                "try again later",
            }
        ]
    }
    assert nothing_was_written()
    assert not Transaction.objects.exists()

    again = post(api, payload)
    assert again.status_code == 201
    assert again.json()["status"] == "Paid"
    assert Transaction.objects.count() == 1


def test_after_reconcile_the_same_request_answers_the_settled_receipt(api):
    payload = body(payment_token=card_token(TIMES_OUT))
    assert post(api, payload).status_code == 202
    assert post(api, payload).json() == {"status": "Pending", "receipt_number": None}

    reconcile(older_than=dt.timedelta(0))
    response = post(api, payload)

    assert response.status_code == 201
    receipt = Receipt.objects.get(made_in_pops=True)
    assert response.json()["receipt_number"] == receipt.number
    assert response.json()["status"] == "Paid"
    assert response.json()["transaction_numbers"] == [Transaction.objects.get().transaction_id]
    assert Transaction.objects.count() == 1
    assert balance() == 38_000


def test_a_payment_is_audited_once_settled_under_who_asked_a_reconciled_one_under_pops(api):
    paid = post(api, body(amount="10.00"), key="a").json()["receipt_number"]
    pending = post(api, body(amount="5.00", payment_token=card_token(TIMES_OUT)), key="b")
    assert pending.status_code == 202
    attempt = PaymentAttempt.objects.get(status=PaymentAttempt.Status.UNKNOWN)
    reconcile(older_than=dt.timedelta(0))
    attempt.refresh_from_db()

    events = AuditEvent.objects.filter(action__regex=r"^payments\.(payment|attempt|part)\.")
    events = events.order_by("pk")
    assert [(e.action, e.actor_type, e.actor_label, e.resource_id) for e in events] == [
        ("payments.payment.succeeded", "api", "tests", paid),
        ("payments.attempt.unknown", "api", "tests", str(attempt.pk)),
        ("payments.part.reconciled", "system", "POPS", str(attempt.pk)),
        ("payments.payment.succeeded", "system", "POPS", attempt.receipt.number),
    ]
    assert events[0].data["amount_cents"] == 1000
    assert events[3].data["attempt"] == attempt.pk


# --- Idempotency ---------------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_same_result_and_charge_once(api):
    payload = body()
    first = post(api, payload)
    second = post(api, payload)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert Transaction.objects.count() == 1
    assert Receipt.objects.filter(made_in_pops=True).count() == 1
    assert balance() == 38_000


def test_a_repeated_decline_answers_the_same_unsuccessful_receipt(api):
    payload = body(payment_token=card_token(DECLINED))
    first, second = post(api, payload), post(api, payload)

    assert first.json() == second.json()
    assert first.json()["status"] == "Unsuccessful"
    assert Receipt.objects.count() == 1


def test_the_fingerprint_is_of_the_parsed_body(api):
    token = card_token()
    first = post(api, {"guarantor": "2010", "amount": "20.0", "payment_token": token})
    same = post(
        api,
        {"payment_token": token, "amount": "20.00", "guarantor": "2010", "group": None},
    )

    assert same.status_code == 201
    assert same.json() == first.json()


def test_the_same_key_with_another_body_answers_422_without_calling_the_gateway(api, monkeypatch):
    token = card_token()
    first = post(api, body(payment_token=token))
    calls: list[object] = []
    monkeypatch.setattr(SandboxGateway, "charge", lambda *args: calls.append(args))

    for other in (body(payment_token=token, amount="30.00"), body()):
        response = post(api, other)
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == "Idempotency-Key"

    assert calls == []
    assert post(api, body(payment_token=token)).json() == first.json()


def test_a_request_while_the_first_is_still_running_answers_409(api, practice):
    payload = body()
    PaymentAttempt.objects.create(
        practice=practice,
        guarantor=Guarantor.objects.get(practice=practice, external_id="2010"),
        idempotency_key="key-1",
        fingerprint=PaymentIn.model_validate(payload).fingerprint,
        amount_cents=2000,
        method=PaymentAttempt.Method.CARD,
    )

    response = post(api, payload)

    assert response.status_code == 409
    assert response.json()["errors"][0]["path"] == "Idempotency-Key"
    assert not Transaction.objects.exists()


def test_keys_are_scoped_to_the_practice(api, api_for):
    other = api_for(prepared_practice("p2"))
    token = card_token()
    assert post(api, body(payment_token=token)).status_code == 201

    response = post(other, body(amount="30.00"))

    assert response.status_code == 201
    assert response.json()["amount"] == "30.00"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "send an Idempotency-Key header"),
        ({"Idempotency-Key": ""}, "send an Idempotency-Key header"),
        ({"Idempotency-Key": "   "}, "send an Idempotency-Key header"),
        ({"Idempotency-Key": "k" * 256}, "at most 255 characters"),
    ],
)
def test_the_idempotency_key_is_required_and_at_most_255_characters(api, headers, message):
    response = api.client.post(
        URL,
        data=json.dumps(body()),
        content_type="application/json",
        headers={**api.headers, **headers},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "Idempotency-Key"
    assert message in response.json()["errors"][0]["message"]
    assert nothing_was_written()


def test_a_key_of_255_characters_is_taken(api):
    assert post(api, body(), key="k" * 255).status_code == 201


# --- Refused: nothing charged, the key not used up -----------------------------------------------


def assert_refused(response, status: int, path: str) -> None:
    assert response.status_code == status, response.json()
    assert [e["path"] for e in response.json()["errors"]] == [path]
    assert nothing_was_written()
    assert not Transaction.objects.filter(status="approved").exists()


@pytest.mark.parametrize("amount", ["10.001", "-1.00", "0", "0.00", "1e3", " 10.00", "", 10, None])
def test_an_amount_must_be_a_decimal_string_more_than_0_with_at_most_two_decimals(api, amount):
    assert_refused(post(api, body(amount=amount)), 422, "amount")
    assert post(api, body()).status_code == 201  # the key was not used up


@pytest.mark.parametrize("amount", ["-1.00", "-0.01", "0", "0.00"])
def test_a_zero_or_negative_amount_is_told_it_must_be_more_than_0(api, amount):
    response = post(api, body(amount=amount))
    assert response.json()["errors"] == [{"path": "amount", "message": "must be more than 0.00"}]


def test_a_malformed_negative_amount_is_told_the_format(api):
    response = post(api, body(amount="-1.001"))
    assert response.json()["errors"][0]["message"].startswith("must be a non-negative decimal")


def test_an_amount_above_the_balance_is_refused_at_amount(api):
    assert_refused(post(api, body(amount="400.01")), 422, "amount")
    assert post(api, body(amount="400.00")).status_code == 201


def test_an_unknown_guarantor_answers_404(api):
    assert_refused(post(api, body(guarantor="9999")), 404, "guarantor")
    assert post(api, body()).status_code == 201


def test_another_practices_guarantor_answers_404_like_a_missing_one(api):
    other = run_import(
        {
            **practice_document("p2"),
            "guarantors": [{"id": "3030", "first_name": "Max", "last_name": "Ray"}],
            "patients": [
                {"id": "P1", "guarantor": "3030", "first_name": "Max", "last_name": "Ray"}
            ],
        }
    ).practice
    prepare_practice(other, actor=Actor.command("tests"))

    missing = post(api, body(guarantor="9999"), key="a")
    foreign = post(api, body(guarantor="3030"), key="b")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["errors"][0]["path"] == "guarantor"
    assert nothing_was_written()


def test_an_unknown_group_is_refused_at_group(api):
    assert_refused(post(api, body(group="no-such-group")), 422, "group")


def test_a_named_group_decides_the_rules(api, practice):
    Group.objects.create(
        practice=practice, slug="strict", name="Strict", minimum_payment_cents=5000
    )

    assert_refused(post(api, body(group="strict")), 422, "amount")
    assert post(api, body(group="strict", amount="50.00")).status_code == 201


def test_a_used_or_tampered_token_is_refused_at_payment_token(api):
    token = card_token()
    assert post(api, body(payment_token=token), key="first").status_code == 201

    for key, bad in (("second", token), ("third", token[:-1] + "x"), ("fourth", "tok_nope")):
        response = post(api, body(payment_token=bad), key=key)
        assert response.status_code == 422, response.json()
        assert response.json()["errors"][0]["path"] == "payment_token"
    assert Transaction.objects.count() == 1
    assert PaymentAttempt.objects.count() == 1
    assert post(api, body(), key="second").status_code == 201


def test_a_payment_needs_a_token_or_a_stored_card(api):
    payload = body()
    del payload["payment_token"]
    assert_refused(post(api, payload), 422, "payment_token")


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"{not json", 400), (b"\xff\xfe", 400), (b"[]", 422), (b'"2010"', 422), (b"null", 422)],
)
def test_a_body_that_is_not_a_json_object_is_refused(api, raw, status):
    response = post(api, None, raw=raw)
    assert response.status_code == status
    assert response.json()["errors"]
    assert nothing_was_written()


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"surprise": 1}, "surprise"),
        ({"email": "not an email"}, "email"),
        ({"email": "pat@example.com\x00"}, "email"),
        ({"guarantor": "20\x0010"}, "guarantor"),
        ({"guarantor": ""}, "guarantor"),
        ({"guarantor": 2010}, "guarantor"),
        ({"wallet": "samsung_pay"}, "wallet"),
        ({"store_card": "yes"}, "store_card"),
        ({"stored_card": "card-1"}, "stored_card"),
        ({"stored_card": True}, "stored_card"),
        ({"payment_token": "t" * 8193}, "payment_token"),
    ],
)
def test_each_bad_field_is_refused_by_name(api, fields, path):
    assert_refused(post(api, body(**fields)), 422, path)


def test_a_missing_field_is_named(api):
    assert_refused(post(api, {"amount": "10.00", "payment_token": "x"}), 422, "guarantor")


def test_without_an_api_key_the_answer_is_401(client):
    response = client.post(URL, data="{}", content_type="application/json")
    assert response.status_code == 401


def test_a_practice_that_cannot_take_payments_answers_503(api_for):
    unprepared = run_import(practice_document("p9")).practice  # no merchant account

    response = post(api_for(unprepared), body())

    assert response.status_code == 503
    assert "nothing was charged" in response.json()["errors"][0]["message"]
    assert nothing_was_written()


def test_a_misconfigured_merchant_account_answers_503(api, practice):
    account = MerchantAccount.objects.get(practice=practice)
    account.set_credentials({"merchant_id": "m"})  # no api key
    account.save()

    response = post(api, body())

    assert response.status_code == 503
    assert nothing_was_written()


# --- Wallets and stored cards --------------------------------------------------------------------


def test_a_wallet_payment_is_taken_when_the_group_offers_it(api_for):
    api = api_for(prepared_practice(enable_google_pay=True))

    response = post(
        api, body(payment_token=wallet_payload(WalletKind.GOOGLE_PAY), wallet="google_pay")
    )

    assert response.status_code == 201
    assert Receipt.objects.get(made_in_pops=True).method == "Google Pay"


def test_a_wallet_the_group_does_not_offer_is_refused(api):
    response = post(
        api, body(payment_token=wallet_payload(WalletKind.APPLE_PAY), wallet="apple_pay")
    )
    assert_refused(response, 422, "payment_method")


def test_a_card_stored_with_one_payment_pays_the_next(api_for):
    practice = prepared_practice(enable_payment_method_storage=True)
    api = api_for(practice)
    assert post(api, body(store_card=True), key="first").status_code == 201
    card = StoredCard.objects.get()

    response = post(api, body(stored_card=str(card.pk)), key="second")
    as_number = post(api, body(stored_card=card.pk), key="third")

    assert response.status_code == as_number.status_code == 201
    assert Receipt.objects.filter(made_in_pops=True, status="paid").count() == 3


def test_a_stored_card_is_paid_with_as_it_is_not_as_a_wallet_nor_stored_again(api_for):
    practice = prepared_practice(enable_payment_method_storage=True, enable_google_pay=True)
    api = api_for(practice)
    post(api, body(store_card=True), key="first")
    card = StoredCard.objects.get()
    before = PaymentAttempt.objects.count()

    wallet = post(api, body(stored_card=card.pk, wallet="google_pay"), key="a")
    again = post(api, body(stored_card=card.pk, store_card=True), key="b")

    assert (wallet.status_code, wallet.json()["errors"][0]["path"]) == (422, "wallet")
    assert (again.status_code, again.json()["errors"][0]["path"]) == (422, "store_card")
    assert PaymentAttempt.objects.count() == before


def test_another_guarantors_or_a_removed_stored_card_is_refused(api_for):
    practice = prepared_practice(enable_payment_method_storage=True)
    api = api_for(practice)
    post(api, body(store_card=True), key="first")
    card = StoredCard.objects.get()
    card.is_active = False
    card.save()

    for key, stored in (("a", card.pk), ("b", 999_999)):
        response = post(api, body(stored_card=stored), key=key)
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == "stored_card"


def test_a_retry_answers_the_first_result_even_after_its_stored_card_was_removed(api_for):
    practice = prepared_practice(enable_payment_method_storage=True)
    api = api_for(practice)
    post(api, body(store_card=True), key="first")
    card = StoredCard.objects.get()
    payload = body(stored_card=card.pk)
    first = post(api, payload, key="second")
    card.is_active = False
    card.save()

    assert post(api, payload, key="second").json() == first.json()


# --- Concurrency (PostgreSQL: several connections) -----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs several connections")
def test_concurrent_requests_with_one_key_charge_once_and_answer_the_same_or_409(api_for):
    practice = prepared_practice(billed="120.00")  # the whole $20.00 balance is paid
    api = api_for(practice)
    payload = body()
    key = str(uuid.uuid4())

    def call():
        response = post(ApiClient(api.headers["Authorization"].split()[1]), payload, key=key)
        return response.status_code, response.json()

    outcomes = run_concurrently([call] * 50)  # (spec: 50 submissions with one key)

    statuses = {status for status, _ in outcomes}
    assert statuses <= {201, 409}, outcomes
    successes = [answer for status, answer in outcomes if status == 201]
    assert successes
    assert all(answer == successes[0] for answer in successes)
    assert successes[0]["status"] == "Paid"
    assert Transaction.objects.count() == 1
    assert Receipt.objects.filter(made_in_pops=True).count() == 1
    assert post(api, payload, key=key).json() == successes[0]


# --- No input makes a 500 ------------------------------------------------------------------------

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
_TOKENS = ("approved", "declined", "times-out", "google-pay", "apple-pay")


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nine times in ten a value the endpoint may take, else anything at all."""
    return st.integers(0, 9).flatmap(lambda n: _ANY if n == 7 else valid)


_BODIES = st.fixed_dictionaries(
    {
        "guarantor": mostly(st.sampled_from(["2010"] * 6 + ["9999", "", " 2010"])),
        "amount": mostly(
            st.sampled_from(["1.00", "20.00", "5.55", "0.99", "400.01", "1.005", "0", "-1"])
            | st.decimals(min_value=-1, max_value=500, places=2).map(lambda d: f"{d:f}")
        ),
        "payment_token": mostly(st.sampled_from(_TOKENS)),
    },
    optional={
        "group": mostly(st.sampled_from([None, "practice-one", "nope"])),
        "email": mostly(st.sampled_from([None, "", "pat@example.com", "pat@"])),
        "wallet": mostly(st.sampled_from([None] * 4 + ["apple_pay", "google_pay", "paypal"])),
        "stored_card": mostly(st.sampled_from([None] * 4 + ["1", 1, "0"])),
        "store_card": mostly(st.booleans()),
    },
)


def _with_token(payload: dict[str, Any]) -> dict[str, Any]:
    token = payload.get("payment_token")
    if token == "approved":
        payload["payment_token"] = card_token(APPROVED)
    elif token == "declined":
        payload["payment_token"] = card_token(DECLINED)
    elif token == "times-out":
        payload["payment_token"] = card_token(TIMES_OUT)
    elif token in ("google-pay", "apple-pay"):
        payload["payment_token"] = wallet_payload(WalletKind(token.replace("-", "_")))
    return payload


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=_BODIES,
    key=st.integers(0, 9).flatmap(lambda n: st.just("a") if n == 7 else st.uuids().map(str)),
)
def test_no_body_makes_a_500_and_every_answer_is_documented(api_for, payload, key):
    practice = Practice.objects.filter(external_id="p1").first() or prepared_practice(
        enable_apple_pay=True, enable_google_pay=True, enable_payment_method_storage=True
    )
    response = post(api_for(practice), _with_token(payload), key=key)

    assert response.status_code in (201, 202, 400, 404, 409, 422, 503), response.content
    answer = response.json()
    if response.status_code == 201:
        assert answer["status"] in ("Paid", "Unsuccessful")
    elif response.status_code == 202:
        assert answer == {"status": "Pending", "receipt_number": None}
    else:
        assert answer["errors"]
        assert all(set(e) == {"path", "message"} for e in answer["errors"])


def test_a_body_over_64_kib_is_refused_before_it_is_read(api):
    huge = post(api, None, raw=b"{" + b" " * (64 * 1024) + b"}")
    beyond_django = api.client.post(
        URL,
        data=b"{}",
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k"},
        CONTENT_LENGTH=str(100 * 1024 * 1024),
    )

    assert huge.status_code == beyond_django.status_code == 400
    assert nothing_was_written()
