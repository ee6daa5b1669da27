from django.urls import include, path

from pops.api.api import api
from pops.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("api/v1/", api.urls),
    path("sandbox-gateway/", include("pops.payments.gateways.sandbox.urls")),
]
