"""A gateway's capability flags decide what POPS offers and asks of it: a page is never offered
what the gateway cannot do, and the services refuse it clearly, before any gateway call.

The gateway here is the Sandbox with some of its capabilities taken away, registered under a
name of its own for the test, as a real adapter that lacks them would be."""

import datetime as dt
import uuid
from typing import Any

import pytest

from pops.core.audit import Actor
from pops.groups.models import Group
from pops.ledger.models import Facility
from pops.payments.gateways import registry
from pops.payments.gateways.base import Capabilities, WalletKind
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import MerchantAccount, PaymentAttempt, StoredCard
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.methods import Offer, offered_for
from pops.payments.services.reconcile import reconcile
from pops.payments.services.refunds import refund_receipt
from pops.payments.services.voids import void_receipt
from tests.payments.conftest import APPROVED, TIMES_OUT, card_token, wallet_payload
from tests.payments.test_voids import DAY_1, guarantor_of, paid_receipt, prepared_practice, staff

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")

ALL = Offer(card=True, apple_pay=True, google_pay=True, store_card=True, stored_cards=True)


class CardsOnly(SandboxGateway):
    """Charges cards, refunds whole payments, and nothing more."""

    name = "cards-only"
    capabilities = Capabilities(refund=True)


class NoRefunds(SandboxGateway):
    name = "no-refunds"
    capabilities = Capabilities(void=True, query_by_reference=True)


@pytest.fixture
def practice(monkeypatch, time_machine):
    time_machine.move_to(DAY_1, tick=False)
    practice = prepared_practice()
    Group.objects.filter(practice=practice).update(
        enable_apple_pay=True, enable_google_pay=True, enable_payment_method_storage=True
    )
    for adapter in (CardsOnly, NoRefunds):
        monkeypatch.setitem(registry.GATEWAYS, adapter.name, adapter)  # type: ignore[index]
    return practice


def group_of(practice) -> Group:
    return Group.objects.get(practice=practice, is_default=True)


def cards_only(practice, gateway: str = CardsOnly.name) -> None:
    MerchantAccount.objects.filter(practice=practice).update(gateway=gateway)


def request(practice, cents: int = 1000, **fields: Any) -> PaymentRequest:
    key = str(uuid.uuid4())
    if "wallet" not in fields:
        fields.setdefault("payment_token", card_token(fields.pop("card", APPROVED)))
    return PaymentRequest(guarantor_of(practice), cents, key, key, Actor.command("tests"), **fields)


# --- What a page is offered --------------------------------------------------------------------


def test_the_sandbox_offers_every_way_the_group_enables(practice):
    assert offered_for(group_of(practice)) == ALL


def test_a_gateway_without_wallets_or_a_vault_offers_cards_alone(practice):
    cards_only(practice)
    assert offered_for(group_of(practice)) == Offer(card=True)


def test_a_group_that_splits_payments_never_offers_apple_pay(practice):
    Group.objects.filter(practice=practice).update(split_payments=True)
    offer = offered_for(group_of(practice))
    assert (offer.apple_pay, offer.google_pay, offer.card) == (False, True, True)


def test_a_group_option_left_off_is_not_offered_whatever_the_gateway_can(practice):
    Group.objects.filter(practice=practice).update(enable_google_pay=False)
    assert offered_for(group_of(practice)).google_pay is False


def test_without_a_merchant_account_nothing_is_offered(practice):
    MerchantAccount.objects.filter(practice=practice).update(is_active=False)
    assert offered_for(group_of(practice)) == Offer()


def test_a_group_without_card_payments_offers_no_stored_card_either(practice):
    Group.objects.filter(practice=practice).update(enable_credit_card=False)
    assert offered_for(group_of(practice)) == Offer(apple_pay=True, google_pay=True)


def test_a_group_that_splits_payments_without_the_practices_own_account_offers_nothing(practice):
    Group.objects.filter(practice=practice).update(split_payments=True)
    MerchantAccount.objects.filter(practice=practice).update(is_active=False)
    MerchantAccount.objects.create(
        practice=practice, name="Clinic 2", gateway="sandbox", facility=Facility.objects.first()
    )
    assert offered_for(group_of(practice)) == Offer()
    with pytest.raises(PaymentsUnavailable):
        pay(request(practice))


def test_a_gateway_pops_does_not_know_offers_nothing_and_payments_are_unavailable(practice):
    receipt = paid_receipt(guarantor_of(practice), 1000)
    cards_only(practice, gateway="retired-gateway")

    assert offered_for(group_of(practice)) == Offer()
    with pytest.raises(PaymentsUnavailable, match="Unknown gateway 'retired-gateway'"):
        pay(request(practice))
    with pytest.raises(PaymentsUnavailable):
        void_receipt(receipt, reason="typo", actor=staff(practice))
    assert PaymentAttempt.objects.count() == 1  # the first payment only


# --- What the services refuse ------------------------------------------------------------------


@pytest.mark.parametrize("wallet", list(WalletKind))
def test_a_wallet_the_gateway_cannot_take_is_refused_before_any_charge(practice, wallet):
    cards_only(practice)
    with pytest.raises(PaymentRefused) as refused:
        pay(request(practice, wallet=wallet, payment_token=wallet_payload(wallet)))

    assert (refused.value.path, refused.value.message) == (
        "payment_method",
        f"{wallet.label} is not available for this payment.",
    )
    assert not PaymentAttempt.objects.exists()
    assert not Transaction.objects.exists()


def test_a_card_is_not_stored_where_the_gateway_has_no_vault(practice):
    cards_only(practice)
    attempt = pay(request(practice, store_card=True))

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.store_card is False
    assert not StoredCard.objects.exists()
    assert Transaction.objects.get().vault_token == ""


def test_a_stored_card_cannot_pay_through_a_gateway_without_a_vault(practice):
    stored = pay(request(practice, store_card=True))
    assert stored.status == PaymentAttempt.Status.SUCCEEDED
    card = StoredCard.objects.get()
    cards_only(practice)

    with pytest.raises(PaymentRefused) as refused:
        pay(PaymentRequest(guarantor_of(practice), 500, "k", "k", ACTOR, stored_card=card))

    assert (refused.value.path, refused.value.message) == (
        "stored_card",
        "Stored cards cannot pay this balance. Please enter the card instead.",
    )
    assert PaymentAttempt.objects.count() == 1
    assert Transaction.objects.count() == 1


def test_a_stored_card_is_not_offered_once_the_group_stops_storing_cards(practice):
    assert pay(request(practice, store_card=True)).status == PaymentAttempt.Status.SUCCEEDED
    card = StoredCard.objects.get()
    Group.objects.filter(practice=practice).update(enable_payment_method_storage=False)

    assert offered_for(group_of(practice)).stored_cards is False
    with pytest.raises(PaymentRefused) as refused:
        pay(PaymentRequest(guarantor_of(practice), 500, "k", "k", ACTOR, stored_card=card))
    assert (refused.value.path, refused.value.message) == (
        "stored_card",
        "Stored cards are not offered here.",
    )
    assert PaymentAttempt.objects.count() == 1


def test_a_payment_the_gateway_cannot_void_is_refused_and_left_paid(practice):
    receipt = paid_receipt(guarantor_of(practice), 1000)
    cards_only(practice)

    with pytest.raises(PaymentRefused, match="cannot void it through POPS: refund it"):
        void_receipt(receipt, reason="typo", actor=staff(practice))

    receipt.refresh_from_db()
    assert receipt.status == receipt.Status.PAID
    assert Transaction.objects.get().status == "approved"


def test_a_gateway_without_partial_refunds_refunds_only_the_whole_payment(practice, time_machine):
    receipt = paid_receipt(guarantor_of(practice), 1000)
    cards_only(practice)
    time_machine.move_to(DAY_1 + dt.timedelta(days=1), tick=False)
    actor = staff(practice)

    with pytest.raises(PaymentRefused, match=r"refunds only whole payments: refund all \$10.00"):
        refund_receipt(receipt, 400, actor=actor, idempotency_key="part")
    assert Transaction.objects.get().refunded_cents == 0

    refund = refund_receipt(receipt, 1000, actor=actor, idempotency_key="whole")
    assert refund.amount_cents == 1000
    assert Transaction.objects.get().refunded_cents == 1000


def test_a_gateway_that_cannot_refund_is_refused_clearly(practice, time_machine):
    receipt = paid_receipt(guarantor_of(practice), 1000)
    cards_only(practice, gateway=NoRefunds.name)
    time_machine.move_to(DAY_1 + dt.timedelta(days=1), tick=False)

    with pytest.raises(PaymentRefused, match="cannot refund it through POPS"):
        refund_receipt(receipt, 1000, actor=staff(practice), idempotency_key="whole")
    assert Transaction.objects.get().refunded_cents == 0


def test_the_reconciler_leaves_unknown_what_it_cannot_ask_the_gateway(practice, caplog):
    attempt = pay(request(practice, card=TIMES_OUT))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    cards_only(practice)

    reconcile(older_than=dt.timedelta(0))

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN  # for a person to settle
    [part] = attempt.parts.all()
    assert f"{part.merchant_reference} cannot be asked by reference" in caplog.text
    MerchantAccount.objects.filter(practice=practice).update(gateway=SandboxGateway.name)
    reconcile(older_than=dt.timedelta(0))
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
