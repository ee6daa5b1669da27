from ninja import NinjaAPI

from pops.api import errors
from pops.api.auth import PracticeKey
from pops.api.routers import batches, guarantors, imports, payments, receipt_actions, receipts

api = NinjaAPI(
    title="POPS API",
    version="1",
    description=(
        "The practice's JSON API. Authenticate with `Authorization: Bearer <practice API key>`. "
        "Money is a decimal string with two decimals; dates are ISO 8601 practice-local dates. "
        'Errors answer `{"errors": [{"path", "message"}]}`.'
    ),
    auth=PracticeKey(),
    urls_namespace="api",
)
errors.install(api)
api.add_router("", imports.router)
api.add_router("", guarantors.router)
api.add_router("", payments.router)
api.add_router("", batches.router)
api.add_router("", receipts.router)
api.add_router("", receipt_actions.router)
