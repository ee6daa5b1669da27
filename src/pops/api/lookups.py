"""What a request names by id, found within the caller's practice, or a clear API error. Another
practice's guarantor answers 404 like a missing one."""

from pops.api.errors import ApiError
from pops.groups.models import Group
from pops.groups.services import GroupNotFound, resolve_group
from pops.ledger.models import Guarantor, Practice


def guarantor_of(practice: Practice, external_id: str, path: str) -> Guarantor:
    """The practice's guarantor with this Guarantor ID, else 404 at `path`."""
    guarantor = Guarantor.objects.filter(practice=practice, external_id=external_id).first()
    if guarantor is None:
        raise ApiError(404, f"no guarantor {external_id!r}", path)
    return guarantor


def group_of(practice: Practice, slug: str | None) -> Group:
    """The practice's Group with this slug (its default Group for None), else 422 at `group`."""
    try:
        return resolve_group(practice, slug)
    except GroupNotFound:
        raise ApiError(422, f"no Group {slug!r} in this practice", "group") from None
