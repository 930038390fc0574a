from accounts.models import Role, role_at_least
from accounts.services import user_role


def role(request):
    current = user_role(getattr(request, "user", None))
    return {
        "user_role": current,
        "can_operate": role_at_least(current, Role.OPERATOR),
        "can_admin": role_at_least(current, Role.ADMIN),
    }
