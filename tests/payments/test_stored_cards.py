"""Stored cards (spec §8 step 4; issue 3 item 5; S-4): stored only when the Group enables
payment method storage and the payer asks; only the vault token, brand, last 4, expiry and an
active flag are kept; listed when active; never edited; removed from the gateway's vault."""

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import models

from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt
from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.models import Transaction, VaultCard
from pops.payments.models import PaymentAttempt, PaymentPart, StoredCard
from pops.payments.services import attempts
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.stored_cards import list_cards, remove_card
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, card_token, wallet_payload
from tests.test_import_documents import small_document

ACTOR = Actor.command("tests")


# --- S-4: the schema can hold nothing more --------------------------------------------------------

# Every column StoredCard has, with its largest size. The only columns for card data are the
# gateway's opaque token, the brand, the last 4 (4 characters: never more of the number) and the
# expiry month and year (small integers). Adding a column, or widening one, fails here.
EXPECTED_COLUMNS = {
    "id": (models.BigAutoField, None),
    "practice": (models.ForeignKey, None),
    "guarantor": (models.ForeignKey, None),
    "merchant_account": (models.ForeignKey, None),
    "vault_token": (models.CharField, 100),
    "brand": (models.CharField, 20),
    "last4": (models.CharField, 4),
    "exp_month": (models.PositiveSmallIntegerField, None),
    "exp_year": (models.PositiveSmallIntegerField, None),
    "is_active": (models.BooleanField, None),
    "created_at": (models.DateTimeField, None),
}


def test_stored_card_has_only_token_brand_last4_expiry_and_active_flag():
    fields = {field.name: field for field in StoredCard._meta.concrete_fields}

    assert set(fields) == set(EXPECTED_COLUMNS)
    for name, (kind, max_length) in EXPECTED_COLUMNS.items():
        assert type(fields[name]) is kind, name
        assert fields[name].max_length == max_length, name


def test_no_stored_card_column_can_hold_more_than_four_digits_of_a_card_number():
    for field in StoredCard._meta.concrete_fields:
        assert not isinstance(field, models.TextField | models.JSONField | models.BinaryField)
        if isinstance(field, models.CharField) and field.name not in ("vault_token", "brand"):
            assert field.max_length <= 4, field.name
        if isinstance(field, models.IntegerField) and not isinstance(field, models.AutoField):
            # exp_month / exp_year: at most 32767, five digits, never a card number.
            assert isinstance(field, models.PositiveSmallIntegerField), field.name
    assert StoredCard._meta.get_field("last4").max_length == 4


def test_no_stored_card_column_is_named_for_a_card_number_or_cvv():
    for field in StoredCard._meta.get_fields():
        assert not any(
            word in field.name.lower()
            for word in ("number", "pan", "cvv", "cvc", "security", "track", "bin")
        ), field.name


# --- Storing --------------------------------------------------------------------------------------


def prepared(**group_options: Any) -> Practice:
    practice = run_import(small_document()).practice  # guarantor 2010 owes $50.00
    prepare_practice(practice, actor=ACTOR)
    Group.objects.filter(practice=practice).update(**group_options)
    return practice


def guarantor() -> Guarantor:
    return Guarantor.objects.get(external_id="2010")


def take(amount_cents: int = 1000, **fields: Any) -> PaymentAttempt:
    if "stored_card" not in fields:
        fields.setdefault("payment_token", card_token(APPROVED))
    return pay(PaymentRequest(guarantor(), amount_cents, uuid.uuid4().hex, "f", ACTOR, **fields))


@pytest.fixture
def storing() -> Practice:
    return prepared(enable_payment_method_storage=True, enable_google_pay=True)


pytestmark = pytest.mark.django_db


def test_a_card_is_stored_when_the_group_allows_it_and_the_payer_asks(storing):
    attempt = take(store_card=True)

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    card = StoredCard.objects.get()
    assert (card.guarantor, card.brand, card.last4, card.exp_month) == (
        guarantor(),
        "Visa",
        "1111",
        12,
    )
    assert card.is_active
    vaulted = VaultCard.objects.get(vault_token=card.vault_token)
    assert vaulted.customer_id == f"{storing.pk}-2010"
    assert vaulted.removed_at is None
    assert card.merchant_account == attempt.parts.get().merchant_account


def test_nothing_is_stored_when_the_group_does_not_enable_storage():
    prepared(enable_payment_method_storage=False)

    attempt = take(store_card=True)

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert not attempt.store_card
    assert not StoredCard.objects.exists()
    assert not VaultCard.objects.exists()  # the gateway was not even asked to keep it


def test_nothing_is_stored_unless_the_payer_asks(storing):
    take(store_card=False)

    assert not StoredCard.objects.exists()
    assert not VaultCard.objects.exists()


def test_a_declined_card_is_not_stored(storing):
    attempt = take(store_card=True, payment_token=card_token(DECLINED))

    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert not StoredCard.objects.exists()
    assert not VaultCard.objects.exists()


def test_a_wallet_payment_cannot_be_stored_and_says_so(storing):
    with pytest.raises(PaymentRefused) as refused:
        take(
            store_card=True,
            payment_token=wallet_payload(WalletKind.GOOGLE_PAY),
            wallet=WalletKind.GOOGLE_PAY,
        )

    assert refused.value.path == "store_card"
    assert refused.value.message == "Only a newly entered card can be stored."
    assert not PaymentAttempt.objects.exists()
    assert not Transaction.objects.exists()


def test_a_stored_card_cannot_be_stored_again(storing):
    take(store_card=True)
    card = StoredCard.objects.get()

    with pytest.raises(PaymentRefused) as refused:
        take(stored_card=card, store_card=True)

    assert refused.value.path == "store_card"
    assert PaymentAttempt.objects.count() == 1


def test_a_stored_card_pays_with_its_vault_token(storing):
    take(store_card=True)
    card = StoredCard.objects.get()

    attempt = take(2000, stored_card=card)

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.method == PaymentAttempt.Method.STORED_CARD
    txn = Transaction.objects.get(transaction_id=attempt.parts.get().transaction_id)
    assert txn.vault_token == card.vault_token
    assert (attempt.receipt.card_brand, attempt.receipt.card_last4) == ("Visa", "1111")
    assert StoredCard.objects.count() == 1


def test_another_guarantors_card_is_refused(storing):
    take(store_card=True)
    card = StoredCard.objects.get()
    other = Guarantor.objects.create(
        practice=storing, external_id="2020", first_name="Sam", last_name="Lee"
    )

    with pytest.raises(PaymentRefused) as refused:
        pay(PaymentRequest(other, 100, "k-other", "f", ACTOR, stored_card=card))

    assert refused.value.path == "stored_card"


# --- Listing --------------------------------------------------------------------------------------


def test_list_cards_offers_only_active_unexpired_cards_of_the_guarantor_newest_first(storing):
    take(store_card=True)
    take(store_card=True, payment_token=card_token(APPROVED, exp="01/40"))
    old, new = StoredCard.objects.order_by("pk")
    expired = StoredCard.objects.create(
        practice=storing,
        guarantor=guarantor(),
        merchant_account=old.merchant_account,
        vault_token="vlt_expired",
        brand="Visa",
        last4="4242",
        exp_month=1,
        exp_year=2020,
    )
    removed = StoredCard.objects.create(
        practice=storing,
        guarantor=guarantor(),
        merchant_account=old.merchant_account,
        vault_token="vlt_removed",
        brand="Visa",
        last4="5556",
        exp_month=1,
        exp_year=2099,
        is_active=False,
    )

    listed = list_cards(guarantor())

    assert listed == [new, old]
    assert expired not in listed
    assert removed not in listed


def test_a_card_is_offered_through_the_last_day_of_its_expiry_month(storing):
    take(store_card=True, payment_token=card_token(APPROVED, exp="12/30"))

    assert list_cards(guarantor(), today=dt.date(2030, 12, 31))
    assert list_cards(guarantor(), today=dt.date(2031, 1, 1)) == []


def test_list_cards_is_empty_for_a_guarantor_without_cards(storing):
    assert list_cards(guarantor()) == []


# --- Removing -------------------------------------------------------------------------------------


def test_remove_card_removes_it_from_the_vault_marks_it_inactive_and_audits(storing):
    take(store_card=True)
    card = StoredCard.objects.get()

    removed = remove_card(card, actor=ACTOR)

    assert not removed.is_active
    assert VaultCard.objects.get(vault_token=card.vault_token).removed_at is not None
    assert list_cards(guarantor()) == []
    event = AuditEvent.objects.get(action="payments.stored_card.removed")
    assert (event.resource_type, event.resource_id) == ("stored_card", str(card.pk))
    assert event.guarantor_id == "2010"
    assert event.actor_label == "pops tests"
    assert card.vault_token not in str(event.data)


def test_a_removed_card_cannot_pay(storing):
    take(store_card=True)
    card = remove_card(StoredCard.objects.get(), actor=ACTOR)

    with pytest.raises(PaymentRefused) as refused:
        take(stored_card=card)

    assert refused.value.message == "That stored card is not available."


def test_removing_twice_answers_the_removed_card_and_audits_once(storing):
    take(store_card=True)
    card = StoredCard.objects.get()
    remove_card(card, actor=ACTOR)

    again = remove_card(card, actor=ACTOR)

    assert not again.is_active
    assert AuditEvent.objects.filter(action="payments.stored_card.removed").count() == 1


def test_a_card_the_vault_no_longer_holds_is_still_removed(storing):
    take(store_card=True)
    card = StoredCard.objects.get()
    VaultCard.objects.filter(vault_token=card.vault_token).delete()

    assert not remove_card(card, actor=ACTOR).is_active


def test_an_unreachable_gateway_keeps_the_card_until_the_removal_is_retried(storing):
    take(store_card=True)
    card = StoredCard.objects.get()

    with (
        faults.inject(faults.Fault.CONNECTION_REFUSED, [faults.Operation.REMOVE_STORED_CARD]),
        pytest.raises(PaymentsUnavailable),
    ):
        remove_card(card, actor=ACTOR)

    card.refresh_from_db()
    assert card.is_active
    assert not AuditEvent.objects.filter(action="payments.stored_card.removed").exists()
    assert not remove_card(card, actor=ACTOR).is_active


def test_removing_a_card_keeps_the_payments_it_made(storing):
    attempt = take(store_card=True)
    card = StoredCard.objects.get()
    paid_with_it = take(500, stored_card=card)

    remove_card(card, actor=ACTOR)

    assert Receipt.objects.filter(pk__in=[attempt.receipt_id, paid_with_it.receipt_id]).count() == 2
    assert StoredCard.objects.filter(pk=card.pk).exists()  # kept, inactive: never deleted


def test_removing_a_card_stored_by_a_split_payment_removes_it_from_every_vault():
    from tests.payments.test_split_payments import Split

    split = Split(enable_payment_method_storage=True)
    split.pay(6000, store_card=True)  # the practice's and F2's accounts
    assert StoredCard.objects.filter(is_active=True).count() == 2
    (card,) = list_cards(split.guarantor)

    remove_card(card, actor=ACTOR)

    assert not StoredCard.objects.filter(is_active=True).exists()
    assert not VaultCard.objects.filter(removed_at=None).exists()
    assert list_cards(split.guarantor) == []


@pytest.mark.parametrize(
    ("brand", "last4", "month", "storable"),
    [
        ("Visa", "1111", 12, True),
        ("Visa", "111", 12, False),
        ("Visa", "\uff11" * 4, 12, False),  # full-width digits are not ASCII digits
        ("Visa4111", "1111", 12, False),
        ("", "1111", 12, False),
        ("Visa", "1111", 13, False),
    ],
)
def test_only_card_details_a_stored_card_row_can_hold_are_stored(brand, last4, month, storable):
    part = PaymentPart(card_brand=brand, card_last4=last4, card_exp_month=month, card_exp_year=2030)
    assert attempts._storable(part) is storable
