from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pops.ledger.models import Guarantor, Practice


def home(request: HttpRequest) -> HttpResponse:
    """The front door of a POPS server: which practices it holds and where to go next."""
    practices = Practice.objects.order_by("name")
    rows = [(p, Guarantor.objects.filter(practice=p).count()) for p in practices[:20]]
    return render(request, "core/home.html", {"practices": rows})


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
