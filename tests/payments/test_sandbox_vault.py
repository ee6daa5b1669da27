"""Stored cards: kept in the gateway's vault on request, charged by vault token, removable."""

import pytest

from pops.payments.gateways.base import Declined, InvalidRequest
from pops.payments.gateways.sandbox.models import Transaction, VaultCard
from tests.payments.conftest import DECLINED, card_token, charge_request

pytestmark = pytest.mark.django_db


def stored(gateway, customer_id="g-2010"):
    result = gateway.charge(
        charge_request(card_token(exp="09/40"), store_card=True, customer_id=customer_id)
    )
    return result.vault_token


def test_a_card_is_stored_when_asked_and_only_what_pops_may_know_is_kept(gateway):
    vault_token = stored(gateway)

    card = VaultCard.objects.get(vault_token=vault_token)
    assert vault_token.startswith("vlt_")
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("Visa", "1111", 9, 2040)
    assert card.customer_id == "g-2010"


def test_a_stored_card_is_charged_by_its_vault_token(gateway):
    vault_token = stored(gateway)

    result = gateway.charge(
        charge_request(vault_token=vault_token, customer_id="g-2010", amount_cents=700)
    )

    assert result.card.last4 == "1111"
    assert result.vault_token == vault_token
    assert Transaction.objects.count() == 2


def test_a_card_is_not_stored_unless_asked(gateway):
    result = gateway.charge(charge_request())
    assert result.vault_token == ""
    assert VaultCard.objects.count() == 0


def test_a_declined_card_is_not_stored(gateway):
    with pytest.raises(Declined):
        gateway.charge(charge_request(card_token(DECLINED), store_card=True, customer_id="g"))
    assert VaultCard.objects.count() == 0


def test_another_customers_vault_token_is_refused(gateway):
    vault_token = stored(gateway, customer_id="g-2010")

    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(charge_request(vault_token=vault_token, customer_id="g-9999"))

    assert raised.value.code == "invalid_vault_token"


def test_another_merchants_vault_token_is_refused(gateway, other_gateway):
    vault_token = stored(gateway)

    with pytest.raises(InvalidRequest):
        other_gateway().charge(charge_request(vault_token=vault_token, customer_id="g-2010"))


def test_a_removed_card_can_no_longer_be_charged(gateway):
    vault_token = stored(gateway)

    gateway.remove_stored_card(vault_token)
    gateway.remove_stored_card(vault_token)  # removing twice is fine

    with pytest.raises(InvalidRequest):
        gateway.charge(charge_request(vault_token=vault_token, customer_id="g-2010"))


def test_removing_an_unknown_card_is_refused(gateway):
    with pytest.raises(InvalidRequest) as raised:
        gateway.remove_stored_card("vlt_unknown")
    assert raised.value.code == "not_found"
