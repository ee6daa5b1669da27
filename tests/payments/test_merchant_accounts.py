"""Merchant accounts: a Sandbox one for every prepared practice, secrets that are never shown."""

import pytest
from django.db import IntegrityError, transaction
from django.forms import modelform_factory
from django.template import Context, Template
from django.test import override_settings

from pops.core.models import AuditEvent
from pops.ledger.models import Facility, Practice, Provider
from pops.payments.gateways.base import GatewayMisconfigured
from pops.payments.gateways.registry import GATEWAYS, gateway_for, get_gateway
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.merchant_accounts import account_for, default_account, ensure_sandbox_account
from pops.payments.models import MerchantAccount

pytestmark = pytest.mark.django_db


def test_ensuring_a_sandbox_account_is_idempotent(practice):
    first = ensure_sandbox_account(practice)
    again = ensure_sandbox_account(practice)

    assert first == again
    assert first.gateway == "sandbox"
    assert MerchantAccount.objects.count() == 1
    assert AuditEvent.objects.filter(action="payments.merchant_account.created").count() == 1


def test_the_sandbox_account_can_take_payments_at_once(practice):
    account = ensure_sandbox_account(practice)
    assert isinstance(gateway_for(account), SandboxGateway)


def test_practices_get_separate_sandbox_merchants(practice):
    other = Practice.objects.create(external_id="p2", name="Two", time_zone="UTC")
    one = gateway_for(ensure_sandbox_account(practice))
    two = gateway_for(ensure_sandbox_account(other))
    assert one.merchant_id != two.merchant_id


def test_an_existing_account_of_another_gateway_is_kept(practice):
    real = MerchantAccount.objects.create(practice=practice, name="NMI", gateway="nmi")

    assert ensure_sandbox_account(practice) == real
    assert MerchantAccount.objects.count() == 1


@override_settings(SANDBOX_GATEWAY_ENABLED=False)
def test_no_sandbox_account_is_made_while_the_sandbox_is_off(practice):
    assert ensure_sandbox_account(practice) is None
    assert MerchantAccount.objects.count() == 0


def test_credentials_never_show_in_str_repr_forms_or_templates(account):
    secret = account.credentials()["api_key"]

    assert secret not in str(account)
    assert secret not in repr(account)
    assert "secret" not in modelform_factory(MerchantAccount, fields="__all__").base_fields
    rendered = Template("{{ a.credentials }}|{{ a.set_credentials }}").render(
        Context({"a": account})
    )
    assert secret not in rendered
    assert secret not in repr(gateway_for(account))
    assert account.has_credentials


def test_credentials_are_replaced_whole(account):
    account.set_credentials({"merchant_id": "m", "api_key": "sk_sandbox_new"})
    account.save()
    account.refresh_from_db()
    assert account.credentials() == {"merchant_id": "m", "api_key": "sk_sandbox_new"}
    with pytest.raises(TypeError):
        account.set_credentials({"api_key": 123})


def test_one_active_default_account_per_practice(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        MerchantAccount.objects.create(practice=account.practice, name="Second", gateway="sandbox")
    account.is_active = False
    account.save()
    MerchantAccount.objects.create(practice=account.practice, name="Second", gateway="sandbox")


def test_a_split_account_belongs_to_a_facility_or_a_provider_not_both(practice):
    facility = Facility.objects.create(practice=practice, external_id="f1", name="Main St")
    provider = Provider.objects.create(practice=practice, external_id="d1", name="Dr One")
    with pytest.raises(IntegrityError), transaction.atomic():
        MerchantAccount.objects.create(
            practice=practice, facility=facility, provider=provider, name="x", gateway="sandbox"
        )


def test_a_facility_with_its_own_account_is_paid_there_others_at_the_default(practice, account):
    main = Facility.objects.create(practice=practice, external_id="f1", name="Main St")
    annex = Facility.objects.create(practice=practice, external_id="f2", name="Annex")
    own = MerchantAccount.objects.create(
        practice=practice, facility=main, name="Main St", gateway="sandbox"
    )

    assert account_for(practice, facility=main) == own
    assert account_for(practice, facility=annex) == account
    assert default_account(practice) == account


def test_a_facility_of_another_practice_does_not_validate(practice):
    other = Practice.objects.create(external_id="p2", name="Two", time_zone="UTC")
    foreign = Facility.objects.create(practice=other, external_id="f1", name="Elsewhere")
    account = MerchantAccount(practice=practice, facility=foreign, name="x", gateway="sandbox")
    with pytest.raises(Exception, match="must belong to its practice"):
        account.full_clean()


def test_the_registry_is_explicit():
    assert dict(GATEWAYS) == {"sandbox": SandboxGateway}


def test_an_unknown_gateway_is_misconfigured():
    with pytest.raises(GatewayMisconfigured, match="Unknown gateway"):
        get_gateway("stripe", {})


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"merchant_id": "m"},
        {"merchant_id": "m", "api_key": "pk_live_x"},
        {"api_key": "sk_sandbox_x"},
    ],
)
def test_bad_sandbox_credentials_are_misconfigured(credentials):
    with pytest.raises(GatewayMisconfigured):
        get_gateway("sandbox", credentials)


def test_an_inactive_account_gives_no_gateway(account):
    account.is_active = False
    with pytest.raises(GatewayMisconfigured):
        gateway_for(account)


@override_settings(SANDBOX_GATEWAY_ENABLED=False)
def test_the_sandbox_refuses_to_charge_while_switched_off(account):
    with pytest.raises(GatewayMisconfigured, match="switched off"):
        gateway_for(account)


def test_the_adapter_refuses_to_run_inside_a_pops_transaction(gateway):
    """A gateway call inside a POPS transaction would lose the record of a real charge if that
    transaction rolled back; the Sandbox's own durable transaction makes the mistake loud."""
    from tests.payments.conftest import charge_request

    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        gateway.charge(charge_request())
