"""GET /api/v1/guarantors/{id}/payment-options and DELETE .../stored-cards/{id}: what an API
client shows before a payment, from the rules the payment is then checked by."""

import pytest

from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import VaultCard
from pops.payments.models import MerchantAccount, StoredCard
from tests.api.test_payments_api import body, post, prepared_practice
from tests.payments.conftest import TIMES_OUT, card_token

pytestmark = pytest.mark.django_db

CARD_METHODS = {
    "card": True,
    "apple_pay": False,
    "google_pay": False,
    "store_card": False,
    "stored_cards": False,
}


def options(api, guarantor: str = "2010", **query: str):
    return api.get(f"/api/v1/guarantors/{guarantor}/payment-options", data=query)


def test_a_guarantor_owing_400_may_pay_the_group_minimum_to_400(api_for):
    practice = prepared_practice(minimum_payment_cents=2500)
    response = options(api_for(practice))

    assert response.status_code == 200
    assert response.json() == {
        "group": "practice-one",
        "amount_due": "0.00",
        "current_balance": "400.00",
        "in_flight": "0.00",
        "payable": "400.00",
        "minimum": "25.00",
        "maximum": "400.00",
        "methods": CARD_METHODS,
        "stored_cards": [],
    }
    assert AuditEvent.objects.filter(action="ledger.balances.viewed").count() == 1


def test_the_range_is_what_a_payment_is_then_held_to(api_for):
    api = api_for(prepared_practice(minimum_payment_cents=2500))
    found = options(api).json()

    assert post(api, body(amount="24.99"), key="below").status_code == 422
    assert post(api, body(amount="400.01"), key="above").status_code == 422
    assert post(api, body(amount=found["minimum"]), key="min").status_code == 201
    after = options(api).json()
    assert (after["payable"], after["maximum"]) == ("375.00", "375.00")
    assert post(api, body(amount=after["maximum"]), key="max").status_code == 201
    settled = options(api).json()
    assert (settled["payable"], settled["minimum"], settled["maximum"]) == ("0.00", None, None)


def test_a_payment_whose_answer_is_not_in_is_held_back_from_what_is_payable(api_for):
    api = api_for(prepared_practice())
    assert post(api, body(amount="150.00", payment_token=card_token(TIMES_OUT))).status_code == 202

    found = options(api).json()

    assert (found["current_balance"], found["in_flight"], found["payable"]) == (
        "400.00",
        "150.00",
        "250.00",
    )
    assert found["maximum"] == "250.00"


def test_prepayment_leaves_no_maximum_and_the_groups_wallets_are_offered(api_for):
    practice = prepared_practice(
        allow_prepayment=True, enable_apple_pay=True, enable_google_pay=True
    )
    found = options(api_for(practice)).json()

    assert found["maximum"] is None
    assert found["methods"] == {**CARD_METHODS, "apple_pay": True, "google_pay": True}


def test_another_group_is_asked_for_by_its_slug(api_for):
    practice = prepared_practice()
    Group.objects.create(practice=practice, slug="clinic", name="Clinic", enable_credit_card=False)
    api = api_for(practice)

    assert options(api, group="clinic").json()["methods"]["card"] is False
    missing = options(api, group="nope")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["path"] == "group"


def test_without_a_merchant_account_nothing_is_offered(api_for):
    practice = prepared_practice()
    MerchantAccount.objects.update(is_active=False)

    assert options(api_for(practice)).json()["methods"] == dict.fromkeys(CARD_METHODS, False)


def test_another_practices_guarantor_is_404_like_a_missing_one(api_for):
    prepared_practice("p2")
    api = api_for(prepared_practice("p1", billed="300.00"))

    assert options(api, guarantor="9999").status_code == 404
    # Guarantor 2010 exists in both practices: this key sees its own practice's only.
    assert options(api).json()["current_balance"] == "200.00"


# --- Stored cards ------------------------------------------------------------------------------


@pytest.fixture
def stored(api_for):
    practice = prepared_practice(enable_payment_method_storage=True)
    api = api_for(practice)
    assert post(api, body(store_card=True), key="store").status_code == 201
    return api, StoredCard.objects.get()


def test_stored_cards_are_listed_and_pay_by_their_id(stored):
    api, card = stored
    found = options(api).json()

    assert found["methods"]["store_card"] is True
    assert found["stored_cards"] == [
        {
            "id": str(card.pk),
            "brand": "Visa",
            "last4": "1111",
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        }
    ]
    paid = post(
        api,
        {"guarantor": "2010", "amount": "5.00", "stored_card": found["stored_cards"][0]["id"]},
        key="again",
    )
    assert paid.status_code == 201


def test_a_stored_card_is_removed_from_the_vault_and_the_list(stored):
    api, card = stored
    address = f"/api/v1/guarantors/2010/stored-cards/{card.pk}"

    response = api.client.delete(address, headers=api.headers)

    assert response.status_code == 204
    card.refresh_from_db()
    assert card.is_active is False
    assert VaultCard.objects.get(vault_token=card.vault_token).removed_at is not None
    assert options(api).json()["stored_cards"] == []
    removed = AuditEvent.objects.get(action="payments.stored_card.removed")
    assert removed.actor_label == "tests"
    again = api.client.delete(address, headers=api.headers)
    assert again.status_code == 404
    assert again.json()["errors"][0]["path"] == "card_id"


@pytest.mark.parametrize("card_id", ["999999", "abc", "1" * 30])
def test_a_card_that_is_not_the_guarantors_is_404(stored, card_id):
    api, card = stored
    response = api.client.delete(
        f"/api/v1/guarantors/2010/stored-cards/{card_id}", headers=api.headers
    )
    assert response.status_code == 404
    assert StoredCard.objects.get(pk=card.pk).is_active


def test_a_vault_that_cannot_be_reached_keeps_the_card_and_answers_503(stored):
    api, card = stored
    address = f"/api/v1/guarantors/2010/stored-cards/{card.pk}"
    with faults.inject(Fault.CONNECTION_REFUSED, [Operation.REMOVE_STORED_CARD]):
        response = api.client.delete(address, headers=api.headers)

    assert response.status_code == 503
    assert response.json()["errors"][0]["message"].endswith("it is kept; send the request again")
    assert StoredCard.objects.get(pk=card.pk).is_active
    assert api.client.delete(address, headers=api.headers).status_code == 204
