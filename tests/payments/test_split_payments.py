"""Split payments (issue 3 item 6; DESIGN "Split payments"): with the Group's option on, one
payment is one gateway transaction per merchant account (facility's, provider's, else the
practice's), all under one receipt listing each Transaction Number. A declined part declines
the whole payment: what other parts took is voided, the receipt is a $0.00 Unsuccessful one and
nothing is posted. Apple Pay is refused for such a payment."""

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import (
    Application,
    Facility,
    Guarantor,
    Practice,
    Provider,
    Receipt,
    ReferenceBatch,
)
from pops.ledger.services.balances import guarantor_balances
from pops.payments.gateways.base import GatewayUnavailable, WalletKind
from pops.payments.gateways.registry import gateway_for
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.cards import Outcome
from pops.payments.gateways.sandbox.models import Transaction, VaultCard
from pops.payments.merchant_accounts import default_account
from pops.payments.models import MerchantAccount, PaymentAttempt, PaymentPart, StoredCard
from pops.payments.services import attempts
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.receipts import receipt_content
from pops.payments.services.reconcile import reconcile
from pops.payments.services.stored_cards import list_cards
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, card_token, charge_request, wallet_payload

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")
Part = PaymentPart.Status


def split_document(practice_id: str = "p1") -> dict[str, Any]:
    """Guarantor 2010 owes $100.00 on three visits, oldest first:
    E100 at F1 by D1 ($50.00), E200 at F2 by D1 ($30.00), E300 at F1 by D2 ($20.00)."""

    def visit(number: str, facility: str, provider: str, day: str, billed: str) -> dict:
        return {
            "number": number,
            "patient": "P1",
            "facility": facility,
            "provider": provider,
            "service_date": f"2026-09-{day}",
            "lines": [{"line": 1, "billed": billed}],
        }

    return {
        "practice": {"id": practice_id, "name": "Split Clinic", "time_zone": "America/Chicago"},
        "facilities": [{"id": "F1", "name": "Main Street"}, {"id": "F2", "name": "Lakeside"}],
        "providers": [{"id": "D1", "name": "Dr. Ada Ames"}, {"id": "D2", "name": "Dr. Bo Berg"}],
        "guarantors": [{"id": "2010", "first_name": "Pat", "last_name": "Lee"}],
        "patients": [{"id": "P1", "guarantor": "2010", "first_name": "Pat", "last_name": "Lee"}],
        "encounters": [
            visit("100", "F1", "D1", "01", "50.00"),
            visit("200", "F2", "D1", "05", "30.00"),
            visit("300", "F1", "D2", "10", "20.00"),
        ],
    }


def sandbox_account(
    practice: Practice, *, facility: Facility | None = None, provider: Provider | None = None
) -> MerchantAccount:
    """A merchant account of its own at the Sandbox (what signing up there gives)."""
    scope = facility or provider
    assert scope is not None
    account = MerchantAccount(
        practice=practice, facility=facility, provider=provider, name=scope.name, gateway="sandbox"
    )
    account.set_credentials(SandboxGateway.sign_up(f"split-{practice.pk}-{uuid.uuid4().hex[:8]}"))
    account.save()
    return account


class Split:
    """A prepared practice splitting payments: the practice's account, F2's and D2's."""

    def __init__(self, practice_id: str = "p1", **group_options: Any):
        self.practice = run_import(split_document(practice_id)).practice
        prepare_practice(self.practice, actor=ACTOR)
        Group.objects.filter(practice=self.practice).update(split_payments=True, **group_options)
        self.group = Group.objects.get(practice=self.practice, is_default=True)
        self.guarantor = Guarantor.objects.get(practice=self.practice, external_id="2010")
        self.default = default_account(self.practice)
        self.f2 = sandbox_account(
            self.practice, facility=Facility.objects.get(practice=self.practice, external_id="F2")
        )
        self.d2 = sandbox_account(
            self.practice, provider=Provider.objects.get(practice=self.practice, external_id="D2")
        )

    def merchant_id(self, account: MerchantAccount) -> str:
        return account.credentials()["merchant_id"]

    def pay(self, amount_cents: int, **fields: Any) -> PaymentAttempt:
        if "stored_card" not in fields:
            fields.setdefault("payment_token", card_token(APPROVED))
        return pay(
            PaymentRequest(
                guarantor=self.guarantor,
                amount_cents=amount_cents,
                idempotency_key=fields.pop("key", uuid.uuid4().hex),
                fingerprint=fields.pop("fingerprint", "f"),
                actor=ACTOR,
                **fields,
            )
        )

    def balance(self) -> int:
        return guarantor_balances(self.guarantor, include_new_charges=False).current_balance

    def parts(self, attempt: PaymentAttempt) -> list[PaymentPart]:
        return list(attempt.parts.select_related("merchant_account").order_by("pk"))


@pytest.fixture
def split() -> Split:
    return Split()


def by_account(parts: list[PaymentPart]) -> dict[int, int]:
    return {part.merchant_account_id: part.amount_cents for part in parts}


# --- One transaction per merchant account, one receipt ------------------------------------------


def test_one_payment_is_one_gateway_transaction_per_merchant_account_under_one_receipt(split):
    attempt = split.pay(10000)

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    parts = split.parts(attempt)
    # E100 (F1, D1: neither has an account) and the rest go to the practice's account.
    assert by_account(parts) == {split.default.pk: 5000, split.f2.pk: 3000, split.d2.pk: 2000}
    assert all(part.status == Part.APPROVED and part.transaction_id for part in parts)
    for part in parts:
        txn = Transaction.objects.get(transaction_id=part.transaction_id)
        assert txn.merchant_id == split.merchant_id(part.merchant_account)
        assert (txn.amount_cents, txn.status) == (part.amount_cents, Transaction.Status.APPROVED)
    assert Transaction.objects.count() == 3

    receipt = Receipt.objects.get(made_in_pops=True)
    assert attempt.receipt == receipt
    assert (receipt.amount_cents, receipt.status) == (10000, Receipt.Status.PAID)
    content = receipt_content(receipt)
    assert content.transaction_numbers == tuple(part.transaction_id for part in parts)
    assert receipt.reference_batch is not None
    assert ReferenceBatch.objects.filter(is_pops=True).count() == 1
    assert split.balance() == 0


def test_each_parts_answer_is_written_as_it_arrives(split, monkeypatch):
    """A decline voids the parts taken before it from their written answers, so with several
    parts each answer is written at once (a single part's waits for the outcome): a process
    that dies before settling leaves them approved."""

    def die(*args: object, **kwargs: object) -> PaymentAttempt:
        raise RuntimeError("the process dies before settling")

    monkeypatch.setattr(attempts, "finish", die)
    with pytest.raises(RuntimeError, match="dies"):
        split.pay(10000)

    attempt = PaymentAttempt.objects.get()
    assert attempt.status == PaymentAttempt.Status.PROCESSING
    parts = split.parts(attempt)
    assert len(parts) == 3
    assert all(part.status == Part.APPROVED and part.transaction_id for part in parts)


def test_each_part_takes_the_share_of_the_lines_the_payment_is_applied_to(split):
    attempt = split.pay(6000)  # E100 in full, then $10.00 of E200

    parts = split.parts(attempt)
    assert by_account(parts) == {split.default.pk: 5000, split.f2.pk: 1000}
    applied = dict(
        Application.objects.filter(receipt=attempt.receipt).values_list(
            "line__encounter__number", "amount_cents"
        )
    )
    assert applied == {"100": 5000, "200": 1000}


def test_a_payment_that_touches_one_merchant_account_is_one_transaction(split):
    attempt = split.pay(4000)  # within E100: the practice's account only

    assert by_account(split.parts(attempt)) == {split.default.pk: 4000}
    assert Transaction.objects.count() == 1


def test_money_beyond_the_lines_goes_to_the_practices_account():
    split = Split(allow_prepayment=True)

    attempt = split.pay(12500)

    assert by_account(split.parts(attempt)) == {
        split.default.pk: 7500,
        split.f2.pk: 3000,
        split.d2.pk: 2000,
    }


def test_the_option_off_takes_the_whole_payment_on_the_practices_account(split):
    Group.objects.filter(pk=split.group.pk).update(split_payments=False)

    attempt = split.pay(10000)

    assert by_account(split.parts(attempt)) == {split.default.pk: 10000}


def test_an_inactive_facility_account_leaves_its_share_to_the_practices_account(split):
    MerchantAccount.objects.filter(pk=split.f2.pk).update(is_active=False)

    attempt = split.pay(10000)

    assert by_account(split.parts(attempt)) == {split.default.pk: 8000, split.d2.pk: 2000}


def test_a_google_pay_payment_splits_like_a_card(split):
    Group.objects.filter(pk=split.group.pk).update(enable_google_pay=True)

    attempt = split.pay(
        10000, payment_token=wallet_payload(WalletKind.GOOGLE_PAY), wallet=WalletKind.GOOGLE_PAY
    )

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert Transaction.objects.filter(wallet="google_pay").count() == 3


def test_a_replay_charges_no_merchant_account_again(split):
    first = split.pay(10000, key="same")
    again = split.pay(10000, key="same", payment_token=card_token(APPROVED))

    assert again.pk == first.pk
    assert Transaction.objects.count() == 3


def test_the_plan_follows_posting_order_for_non_numeric_encounter_numbers():
    """Posting orders encounter numbers numerically where they are numbers, the others after
    them (NULLS LAST on every database); the split must charge the same lines' accounts."""
    document = split_document()
    document["encounters"][1]["number"] = "A7"  # F2's visit, not a number
    document["encounters"][1]["service_date"] = "2026-09-01"
    document["encounters"][0]["number"] = "5"  # the practice's visit, same date
    practice = run_import(document).practice
    prepare_practice(practice, actor=ACTOR)
    Group.objects.filter(practice=practice).update(split_payments=True)
    f2 = sandbox_account(practice, facility=Facility.objects.get(external_id="F2"))
    guarantor = Guarantor.objects.get(external_id="2010")

    attempt = pay(
        PaymentRequest(guarantor, 5000, "k", "f", ACTOR, payment_token=card_token(APPROVED))
    )

    applied = list(
        Application.objects.filter(receipt=attempt.receipt).values_list(
            "line__encounter__number", flat=True
        )
    )
    assert applied == ["5"]
    assert by_account(list(attempt.parts.all())) == {default_account(practice).pk: 5000}
    assert not PaymentPart.objects.filter(merchant_account=f2).exists()


# --- A declined part declines the whole payment ---------------------------------------------------


def refuse_connections_at(monkeypatch, merchant_id: str) -> None:
    """The Sandbox refuses the connection for one merchant account only (its fault switch,
    switched on around that merchant's charges)."""
    original = SandboxGateway.charge

    def charge(self, request):
        if self.merchant_id != merchant_id:
            return original(self, request)
        with faults.inject(faults.Fault.CONNECTION_REFUSED):
            return original(self, request)

    monkeypatch.setattr(SandboxGateway, "charge", charge)


def assert_declined_and_nothing_posted(split: Split, attempt: PaymentAttempt, before: int) -> None:
    assert attempt.status == PaymentAttempt.Status.DECLINED
    receipt = attempt.receipt
    assert (receipt.amount_cents, receipt.status) == (0, Receipt.Status.UNSUCCESSFUL)
    assert receipt.reference_batch is None
    assert not ReferenceBatch.objects.filter(is_pops=True).exists()
    assert not Application.objects.filter(receipt=receipt).exists()
    assert receipt_content(receipt).transaction_numbers == ()
    assert split.balance() == before
    references = [part.merchant_reference for part in attempt.parts.all()]
    taken = Transaction.objects.filter(merchant_reference__in=references)
    assert not taken.filter(status=Transaction.Status.APPROVED).exists()


def test_a_part_the_gateway_could_not_reach_voids_the_parts_taken_before_it(split, monkeypatch):
    refuse_connections_at(monkeypatch, split.merchant_id(split.f2))
    before = split.balance()

    with pytest.raises(PaymentsUnavailable, match="could not reach the card processor"):
        split.pay(10000, key="same-key")

    # The first part was taken and given back; nothing was posted; the key is free again.
    [taken] = Transaction.objects.filter(merchant_id=split.merchant_id(split.default))
    assert taken.status == "voided"
    assert not Transaction.objects.exclude(pk=taken.pk).exists()
    assert not PaymentAttempt.objects.exists()
    assert not PaymentPart.objects.exists()
    assert not Receipt.objects.filter(made_in_pops=True).exists()
    assert not ReferenceBatch.objects.filter(is_pops=True).exists()
    assert split.balance() == before
    [abandoned] = AuditEvent.objects.filter(action="payments.attempt.abandoned")
    assert abandoned.data["gateway_error"] == "GatewayUnavailable"

    monkeypatch.undo()  # the processor is back: the same key pays, once
    attempt = split.pay(10000, key="same-key")
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert split.balance() == before - 10000


def test_when_the_part_taken_before_cannot_be_voided_the_reconciler_gives_it_back(
    split, monkeypatch
):
    refuse_connections_at(monkeypatch, split.merchant_id(split.f2))

    def void_unreachable(self, transaction_id):
        raise GatewayUnavailable("void timed out", charge_may_have_happened=True)

    with monkeypatch.context() as voids_fail:
        voids_fail.setattr(SandboxGateway, "void", void_unreachable)
        attempt = split.pay(10000, key="same-key")

    # Money was taken and not yet given back: the payment is unknown, never "failed".
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    first, second, third = split.parts(attempt)
    assert (first.status, second.status, third.status) == (
        Part.APPROVED,
        Part.DECLINED,
        Part.DECLINED,
    )
    assert (second.decline_code, third.decline_code) == ("unavailable", "not_charged")
    assert not Transaction.objects.filter(merchant_id=split.merchant_id(split.d2)).exists()
    again = split.pay(10000, key="same-key")  # the key answers the same attempt
    assert (again.pk, again.status) == (attempt.pk, PaymentAttempt.Status.UNKNOWN)

    reconcile(older_than=dt.timedelta(0))  # the gateway answers voids again

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert Transaction.objects.get(transaction_id=first.transaction_id).status == "voided"
    assert not Transaction.objects.filter(status="approved").exists()


def store_in_every_vault(split: Split) -> StoredCard:
    """The guarantor's card, stored earlier in each merchant account's vault (one $1.00 charge
    at each, outside POPS's ledger), as POPS keeps it: one StoredCard row per vault. The Group
    enables payment method storage, without which stored cards are not offered."""
    Group.objects.filter(pk=split.group.pk).update(enable_payment_method_storage=True)
    split.group.refresh_from_db()
    customer_id = f"{split.practice.pk}-{split.guarantor.external_id}"
    for account in (split.default, split.f2, split.d2):
        result = gateway_for(account).charge(
            charge_request(card_token(APPROVED), 100, store_card=True, customer_id=customer_id)
        )
        StoredCard.objects.create(
            practice=split.practice,
            guarantor=split.guarantor,
            merchant_account=account,
            vault_token=result.vault_token,
            brand=result.card.brand,
            last4=result.card.last4,
            exp_month=result.card.exp_month,
            exp_year=result.card.exp_year,
        )
    return StoredCard.objects.get(merchant_account=split.default)


def test_a_stored_card_pays_each_account_with_that_accounts_vault_token(split):
    card = store_in_every_vault(split)

    attempt = split.pay(10000, stored_card=card)

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    for part in split.parts(attempt):
        txn = Transaction.objects.get(transaction_id=part.transaction_id)
        twin = StoredCard.objects.get(merchant_account=part.merchant_account)
        assert txn.vault_token == twin.vault_token


def test_a_card_declined_at_one_merchant_account_declines_the_whole_payment(split):
    card = store_in_every_vault(split)
    # F2's processor declines this card now (the Sandbox's copy in F2's vault is scripted so).
    twin = StoredCard.objects.get(merchant_account=split.f2)
    VaultCard.objects.filter(vault_token=twin.vault_token).update(outcome=Outcome.DECLINED)
    earlier = set(Transaction.objects.values_list("pk", flat=True))
    before = split.balance()

    attempt = split.pay(10000, stored_card=card)

    assert_declined_and_nothing_posted(split, attempt, before)
    first, second, third = split.parts(attempt)
    assert (first.merchant_account, first.status) == (split.default, Part.VOIDED)
    assert (second.merchant_account, second.status) == (split.f2, Part.DECLINED)
    assert second.decline_code == "declined"
    assert (third.status, third.decline_code) == (Part.DECLINED, "not_charged")
    assert attempt.decline_message == "Your card was declined. Please use another card."
    new = Transaction.objects.exclude(pk__in=earlier).order_by("pk")
    assert [(t.merchant_id, t.status) for t in new] == [
        (split.merchant_id(split.default), Transaction.Status.VOIDED),
        (split.merchant_id(split.f2), Transaction.Status.DECLINED),
    ]


def test_a_decline_on_the_first_part_charges_no_other_account(split):
    attempt = split.pay(10000, payment_token=card_token(DECLINED))

    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert [p.status for p in split.parts(attempt)] == [Part.DECLINED] * 3
    assert Transaction.objects.count() == 1  # only the first account was asked
    assert attempt.receipt.amount_cents == 0


def test_a_token_refused_by_a_later_account_voids_the_earlier_parts_and_writes_nothing(split):
    token = card_token(APPROVED)
    gateway_for(split.f2).charge(charge_request(token, amount_cents=100))  # token used at F2

    with pytest.raises(PaymentRefused) as refused:
        split.pay(10000, payment_token=token)

    assert refused.value.path == "payment_token"
    assert not PaymentAttempt.objects.exists()
    assert not Receipt.objects.exists()
    taken = Transaction.objects.get(merchant_id=split.merchant_id(split.default))
    assert taken.status == Transaction.Status.VOIDED


# --- Apple Pay ------------------------------------------------------------------------------------


def test_apple_pay_is_refused_for_a_split_payment_with_a_clear_message():
    split = Split(enable_apple_pay=True)

    with pytest.raises(PaymentRefused) as refused:
        split.pay(
            10000, payment_token=wallet_payload(WalletKind.APPLE_PAY), wallet=WalletKind.APPLE_PAY
        )

    assert refused.value.path == "payment_method"
    assert refused.value.message == "Apple Pay is not available for split payments."
    assert not PaymentAttempt.objects.exists()
    assert not Transaction.objects.exists()


def test_apple_pay_is_refused_through_the_api_and_the_key_stays_usable(api_for):
    split = Split(enable_apple_pay=True)
    api = api_for(split.practice)
    headers = {**api.headers, "Idempotency-Key": "apple-1"}

    def post(payload: dict) -> Any:
        return api.client.post(
            "/api/v1/payments",
            data=json.dumps(payload),
            content_type="application/json",
            headers=headers,
        )

    refused = post(
        {
            "guarantor": "2010",
            "amount": "100.00",
            "payment_token": wallet_payload(WalletKind.APPLE_PAY),
            "wallet": "apple_pay",
        }
    )
    assert refused.status_code == 422
    assert "Apple Pay is not available for split payments." in refused.text
    assert not Transaction.objects.exists()

    paid = post({"guarantor": "2010", "amount": "100.00", "payment_token": card_token()})
    assert paid.status_code == 201
    assert len(paid.json()["transaction_numbers"]) == 3


def test_apple_pay_is_taken_when_the_group_does_not_split():
    split = Split(enable_apple_pay=True)
    Group.objects.filter(pk=split.group.pk).update(split_payments=False)

    attempt = split.pay(
        10000, payment_token=wallet_payload(WalletKind.APPLE_PAY), wallet=WalletKind.APPLE_PAY
    )

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED


# --- Stored cards and split payments ------------------------------------------------------------


def test_a_card_stored_by_a_split_payment_pays_a_later_split_payment():
    split = Split(enable_payment_method_storage=True)
    split.pay(6000, store_card=True)  # the practice's and F2's accounts: stored in both vaults
    rows = StoredCard.objects.order_by("pk")
    assert {row.merchant_account_id for row in rows} == {split.default.pk, split.f2.pk}
    (card,) = list_cards(split.guarantor)  # the guarantor sees it once

    attempt = split.pay(2000, stored_card=card)  # $20.00 of E200 (F2) and nothing else

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert by_account(split.parts(attempt)) == {split.f2.pk: 2000}


def test_a_stored_card_not_in_every_accounts_vault_is_refused_before_any_charge():
    split = Split(enable_payment_method_storage=True)
    split.pay(100, store_card=True)  # within E100: only the practice's vault has it
    (card,) = list_cards(split.guarantor)
    charged = Transaction.objects.count()

    with pytest.raises(PaymentRefused) as refused:
        split.pay(split.balance(), stored_card=card)

    assert refused.value.path == "stored_card"
    assert "enter the card" in refused.value.message.lower()
    assert Transaction.objects.count() == charged
    assert PaymentAttempt.objects.count() == 1


def test_an_abandoned_attempt_leaves_an_audit_record_of_why(split):
    token = card_token(APPROVED)
    gateway_for(split.f2).charge(charge_request(token, amount_cents=100))  # token used at F2

    with pytest.raises(PaymentRefused):
        split.pay(10000, payment_token=token)

    event = AuditEvent.objects.get(action="payments.attempt.abandoned")
    assert event.outcome == AuditEvent.Outcome.ERROR
    assert event.practice_id == split.practice.pk
    assert event.data["gateway_error"] == "InvalidRequest"


def test_an_unsuccessful_receipt_names_the_card_that_was_declined(split):
    attempt = split.pay(10000, payment_token=card_token(DECLINED))

    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert attempt.receipt.card_last4 == DECLINED[-4:]
    assert attempt.receipt.card_brand
