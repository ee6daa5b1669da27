import re

from django.db import connection
from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pops.api.models import ApiKey, digest
from pops.demo import build as demo
from pops.demo.document import PRACTICE_ID as DEMO_PRACTICE_ID
from pops.groups.models import Group
from pops.ledger.models import Guarantor, Practice

# The front page lists this many practices at most.
HOME_PRACTICES = 20
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def swatch(group: Group) -> tuple[int, str, str, str]:
    """A Group's background, primary and accent colours for the page's style sheet; only
    well-formed colours reach it (a row written around validation falls back to grey)."""
    background, primary, accent = (
        colour if COLOUR.fullmatch(colour) else "#94a3b8"
        for colour in (group.background_color, group.primary_color, group.accent_color)
    )
    return group.pk, background, primary, accent


def home(request: HttpRequest) -> HttpResponse:
    """The front door of a POPS server: the practices it holds with their Groups, where the API
    is, and, where `pops demo` ran, the published demo key with commands to paste. The demo
    practice comes first, then the others by name. At most three queries, whatever the number of
    practices, guarantors or Groups."""
    guarantor_count = (
        Guarantor.objects.filter(practice=OuterRef("pk"))
        .order_by()
        .values("practice")
        .annotate(n=Count("pk"))
        .values("n")
    )
    practices = list(
        Practice.objects.annotate(
            guarantor_count=Coalesce(Subquery(guarantor_count), 0, output_field=IntegerField()),
            demo_first=Case(When(external_id=DEMO_PRACTICE_ID, then=Value(0)), default=Value(1)),
        ).order_by("demo_first", "name", "pk")[: HOME_PRACTICES + 1]
    )
    more = len(practices) > HOME_PRACTICES
    practices = practices[:HOME_PRACTICES]
    groups: dict[int, list[Group]] = {p.pk: [] for p in practices}
    for group in Group.objects.filter(practice__in=practices).order_by("-is_default", "name"):
        groups[group.practice_id].append(group)

    demo_practice = next((p for p in practices if p.external_id == DEMO_PRACTICE_ID), None)
    demo_key_works = (
        demo_practice is not None
        and ApiKey.objects.filter(
            practice=demo_practice,
            key_digest=digest(demo.DEMO_API_KEY),
            revoked_at__isnull=True,
        ).exists()
    )
    base = request.build_absolute_uri("/").rstrip("/")

    def curl(guarantor: str, group: str = "") -> str:
        query = f"?group={group}" if group else ""
        return (  # two lines, so a narrow screen breaks it where a shell would
            f'curl -H "Authorization: Bearer {demo.DEMO_API_KEY}" \\\n'
            f'  "{base}/api/v1/guarantors/{guarantor}/balances{query}"'
        )

    demo_groups = groups.get(demo_practice.pk, []) if demo_practice else []
    return render(
        request,
        "core/home.html",
        {
            "practices": [(p, groups[p.pk]) for p in practices],
            "more_practices": more,
            "swatches": [swatch(g) for p in practices for g in groups[p.pk]],
            "demo_practice": demo_practice,
            "demo_key": demo.DEMO_API_KEY if demo_key_works else "",
            "demo_curl": curl(demo.EXAMPLE_GUARANTOR),
            "demo_group_curl": curl(demo.NEW_CHARGES_GUARANTOR, demo.SECOND_GROUP_SLUG)
            if any(g.slug == demo.SECOND_GROUP_SLUG for g in demo_groups)
            else "",
            "demo_example": demo.EXAMPLE_GUARANTOR,
            "demo_new_charges": demo.NEW_CHARGES_GUARANTOR,
            "demo_second_group": demo.SECOND_GROUP_SLUG,
        },
    )


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
