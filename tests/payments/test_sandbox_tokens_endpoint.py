"""POST /sandbox-gateway/tokens: the gateway's tokenizer, standing where NMI's servers would."""

import datetime as dt

import pytest
import time_machine
from django.test import Client, override_settings

from pops.payments.gateways.base import InvalidRequest
from pops.payments.gateways.sandbox.tokens import TOKEN_LIFETIME
from tests.payments.conftest import charge_request, future_exp

pytestmark = pytest.mark.django_db
URL = "/sandbox-gateway/tokens"


def tokenize(client, body, **kwargs):
    return client.post(URL, data=body, content_type="application/json", **kwargs)


def test_a_valid_card_gets_a_token(client):
    response = tokenize(
        client, {"card_number": "4111 1111 1111 1111", "exp": future_exp(), "cvv": "123"}
    )

    assert response.status_code == 200
    assert set(response.json()) == {"token"}
    assert response.json()["token"].startswith("tok_")


def test_the_endpoint_needs_no_csrf_token_because_it_is_the_gateways():
    client = Client(enforce_csrf_checks=True)
    response = tokenize(
        client, {"card_number": "4111111111111111", "exp": future_exp(), "cvv": "1234"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"card_number": "4111111111111112", "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": "411111111111", "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": "41111111111111111111", "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": "4111-abcd-1111-1111", "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": "", "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": 4111111111111111, "exp": "12/40", "cvv": "123"}, "card_number"),
        ({"exp": "12/40", "cvv": "123"}, "card_number"),
        ({"card_number": "4111111111111111", "exp": "13/40", "cvv": "123"}, "exp"),
        ({"card_number": "4111111111111111", "exp": "1240", "cvv": "123"}, "exp"),
        ({"card_number": "4111111111111111", "exp": "01/20", "cvv": "123"}, "exp"),
        ({"card_number": "4111111111111111", "cvv": "123"}, "exp"),
        ({"card_number": "4111111111111111", "exp": "12/40", "cvv": "12"}, "cvv"),
        ({"card_number": "4111111111111111", "exp": "12/40", "cvv": "12345"}, "cvv"),
        ({"card_number": "4111111111111111", "exp": "12/40", "cvv": "1a3"}, "cvv"),
        ({"card_number": "4111111111111111", "exp": "12/40"}, "cvv"),
    ],
)
def test_bad_card_input_gets_a_clear_400(client, body, path):
    response = tokenize(client, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["path"] == path
    assert errors[0]["message"]
    assert "4111111111111111" not in response.content.decode()


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"{" + b" " * 5000 + b"}"]
)
def test_a_body_that_is_not_a_json_object_gets_a_400(client, raw):
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == ""


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_a_card_expiring_this_month_is_still_good(client):
    with time_machine.travel(dt.datetime(2031, 3, 31, 12, tzinfo=dt.UTC)):
        response = tokenize(
            client, {"card_number": "4111111111111111", "exp": "03/31", "cvv": "123"}
        )
    assert response.status_code == 200


def test_a_card_that_expired_last_month_is_refused(client):
    with time_machine.travel(dt.datetime(2031, 4, 1, 0, 0, 1, tzinfo=dt.UTC)):
        response = tokenize(
            client, {"card_number": "4111111111111111", "exp": "03/31", "cvv": "123"}
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "exp"


def test_a_token_is_one_time(client, gateway):
    token = tokenize(client, {"card_number": "4111111111111111", "exp": "12/40", "cvv": "123"})
    token = token.json()["token"]
    gateway.charge(charge_request(token))

    with pytest.raises(InvalidRequest, match="already been used"):
        gateway.charge(charge_request(token))


def test_a_token_expires(client, gateway):
    start = dt.datetime(2030, 1, 10, 9, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        body = {"card_number": "4111111111111111", "exp": "12/40", "cvv": "123"}
        fresh = tokenize(client, body).json()["token"]
        stale = tokenize(client, body).json()["token"]
        traveller.shift(TOKEN_LIFETIME - dt.timedelta(seconds=1))
        gateway.charge(charge_request(fresh))
        traveller.shift(dt.timedelta(seconds=1))

        with pytest.raises(InvalidRequest) as raised:
            gateway.charge(charge_request(stale))

    assert raised.value.code == "token_expired"


@override_settings(SANDBOX_GATEWAY_ENABLED=False)
def test_the_sandbox_answers_404_when_switched_off(client):
    body = {"card_number": "4111111111111111", "exp": "12/40", "cvv": "123"}
    assert tokenize(client, body).status_code == 404
    assert client.get("/sandbox-gateway/hosted-fields").status_code == 404
    assert client.get("/sandbox-gateway/wallets/google-pay").status_code == 404
    assert client.get("/sandbox-gateway/assets/hosted-fields.js").status_code == 404
