import pytest

from tests.conftest import run_import
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address",
    ["/api/v1/guarantors/%00/balances", "/api/v1/guarantors/2010/balances?group=%00"],
)
def test_an_address_with_control_characters_is_refused_clearly(api_for, address):
    api = api_for(run_import(small_document()).practice)
    response = api.get(address)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"path": "", "message": "the address holds control characters"}]
    }


def test_a_page_address_with_control_characters_is_refused(client):
    assert client.get("/?q=%01").status_code == 400
