"""In a real browser, the hosted fields hand the parent page a token and nothing else."""

import shutil

import pytest
from django.db import connections

from pops.payments.gateways.base import DeclineCode, Declined, WalletKind
from pops.payments.gateways.sandbox.models import Token
from tests.payments.conftest import charge_request, future_exp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM = shutil.which("chromium")

PARENT = """<!doctype html><html><body>
<iframe id="gateway" src="/sandbox-gateway/hosted-fields" title="Card"></iframe>
<script>
  window.received = [];
  window.addEventListener("message", (event) => {
    window.received.push({origin: event.origin, data: event.data});
  });
</script></body></html>"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an event loop in this thread; the tests' ORM reads are safe.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield browser
            browser.close()


@pytest.fixture
def page(browser, live_server):
    page = browser.new_page()
    # A stand-in for a POPS payment page, on POPS's own origin.
    page.route(
        f"{live_server.url}/parent",
        lambda route: route.fulfill(status=200, content_type="text/html", body=PARENT),
    )
    page.goto(f"{live_server.url}/parent")
    yield page
    page.close()
    # ORM calls made while Playwright's loop runs get a connection of their own: close it.
    connections.close_all()


def messages_of_type(page, kind):
    return [m for m in page.evaluate("window.received") if m["data"].get("type") == kind]


def test_the_iframe_posts_a_one_time_token_to_its_parent(page, live_server):
    frame = page.frame_locator("#gateway")
    frame.get_by_label("Card number").fill("4111 1111 1111 1111")
    frame.get_by_label("Expiration (MM/YY)").fill(future_exp().replace("/", ""))
    frame.get_by_label("CVV").fill("123")

    page.evaluate(
        """document.getElementById("gateway").contentWindow.postMessage(
             {type: "sandbox-gateway:tokenize"}, window.location.origin)"""
    )
    page.wait_for_function(
        "window.received.some(m => m.data.type === 'sandbox-gateway:token')", timeout=5000
    )

    [message] = messages_of_type(page, "sandbox-gateway:token")
    assert message["origin"] == live_server.url
    assert set(message["data"]) == {"type", "token"}
    assert Token.objects.get(token=message["data"]["token"]).last4 == "1111"
    assert frame.get_by_label("Card number").input_value() == ""


def test_bad_input_is_shown_in_the_iframe_and_reported_without_card_data(page):
    frame = page.frame_locator("#gateway")
    frame.get_by_label("Card number").fill("4111 1111 1111 1112")
    frame.get_by_label("Expiration (MM/YY)").fill(future_exp())
    frame.get_by_label("CVV").fill("123")
    frame.get_by_label("CVV").press("Enter")

    page.wait_for_function(
        "window.received.some(m => m.data.type === 'sandbox-gateway:error')", timeout=5000
    )
    [message] = messages_of_type(page, "sandbox-gateway:error")
    assert message["data"]["errors"][0]["path"] == "card_number"
    assert "4111" not in str(message)
    assert frame.get_by_role("alert").inner_text() == "This card number is not valid."
    assert Token.objects.count() == 0


def test_the_google_pay_sheet_posts_an_opaque_payload_the_gateway_accepts(page, gateway):
    page.evaluate(
        """document.getElementById("gateway").src = "/sandbox-gateway/wallets/google-pay";"""
    )
    sheet = page.frame_locator("#gateway")
    sheet.get_by_label("Insufficient funds: Visa ending 9995").check()
    sheet.get_by_role("button", name="Pay with Google Pay").click()

    page.wait_for_function(
        "window.received.some(m => m.data.type === 'sandbox-gateway:wallet')", timeout=5000
    )
    [message] = messages_of_type(page, "sandbox-gateway:wallet")
    assert message["data"]["wallet"] == "google_pay"
    with pytest.raises(Declined) as raised:
        gateway.charge(charge_request(message["data"]["payload"], wallet=WalletKind.GOOGLE_PAY))
    assert raised.value.code == DeclineCode.INSUFFICIENT_FUNDS
