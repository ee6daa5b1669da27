from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from pops.api.api import api
from pops.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("favicon.ico", RedirectView.as_view(url=static("core/favicon.svg"), permanent=True)),
    path("api/v1/", api.urls),
    path("sandbox-gateway/", include("pops.payments.gateways.sandbox.urls")),
]
