"""The hosted-fields page: three labelled inputs, framable by POPS and by nobody else."""

from html.parser import HTMLParser

import pytest

from pops.payments.gateways.base import WalletKind

pytestmark = pytest.mark.django_db
URL = "/sandbox-gateway/hosted-fields"


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.labels: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.scripts: list[str] = []
        self._label_for: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "label":
            self._label_for = attributes.get("for")
        elif tag == "input":
            self.inputs[attributes["id"]] = attributes
        elif tag == "script":
            self.scripts.append(attributes.get("src") or "inline")

    def handle_data(self, data):
        if self._label_for and data.strip():
            self.labels[data.strip()] = self._label_for

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None


def parse(response) -> Page:
    page = Page()
    page.feed(response.content.decode())
    return page


def test_the_page_has_the_three_labelled_card_inputs(client):
    page = parse(client.get(URL))

    for label in ("Card number", "Expiration (MM/YY)", "CVV"):
        assert page.labels[label] in page.inputs


def test_the_inputs_have_no_name_so_a_plain_submit_sends_no_card_data(client):
    page = parse(client.get(URL))
    assert all("name" not in attributes for attributes in page.inputs.values())


def test_only_pops_own_origin_may_frame_it(client):
    response = client.get(URL)

    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy
    assert "'none'" not in policy.split("frame-ancestors")[1].split(";")[0]
    assert "script-src 'self'" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "no-store" in response["Cache-Control"]


def test_other_pages_stay_unframable(client):
    response = client.get("/")
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_its_only_script_is_its_own_file(client):
    page = parse(client.get(URL))
    assert page.scripts == ["/sandbox-gateway/assets/hosted-fields.js"]


def test_the_script_is_served_under_the_sandbox_prefix(client):
    response = client.get("/sandbox-gateway/assets/hosted-fields.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"postMessage" in response.content
    assert client.get("/sandbox-gateway/assets/settings.py").status_code == 404


def test_client_setup_points_at_the_hosted_fields_and_wallet_sheets(client, gateway):
    setup = gateway.client_setup()

    assert setup.hosted_fields_url == URL
    assert setup.origin == ""
    for wallet in WalletKind:
        assert client.get(setup.wallet_sheet_urls[wallet]).status_code == 200
