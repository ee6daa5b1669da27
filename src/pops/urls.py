from django.urls import path

from pops.api.api import api
from pops.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("api/v1/", api.urls),
]
