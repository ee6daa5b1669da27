"""Authentication for staff; system users (such as "POPS") can never sign in."""

from typing import Any

from django.contrib.auth.backends import ModelBackend


class StaffBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return not getattr(user, "is_system", False) and super().user_can_authenticate(user)
