"""The Sandbox gateway's own URL prefix, mounted by POPS at /sandbox-gateway/."""

from django.urls import path

from pops.payments.gateways.sandbox import views

app_name = "sandbox_gateway"

urlpatterns = [
    path("hosted-fields", views.hosted_fields, name="hosted_fields"),
    path("tokens", views.create_token, name="tokens"),
    path("wallets/<slug:wallet>", views.wallet_sheet, name="wallet_sheet"),
    path("wallets/<slug:wallet>/tokens", views.create_wallet_token, name="wallet_tokens"),
    path("assets/<str:name>", views.asset, name="asset"),
]
