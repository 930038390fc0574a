"""The API's pagination: `{"count", "next", "previous", "results"}`, strict about its parameters."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """LimitOffsetPagination that answers 400 to `?limit=abc` instead of silently using the default."""

    max_limit = 1000
    max_offset = 2**31 - 1  # PostgreSQL refuses an OFFSET past bigint; nobody pages this far

    def _non_negative(self, request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        if value is None or value < minimum:
            raise ValidationError({name: [f"{shown!r} is not an integer of at least {minimum}."]})
        if maximum is not None and value > maximum:
            raise ValidationError({name: [f"{shown!r} is more than {maximum}."]})
        return value

    def get_limit(self, request):
        value = self._non_negative(request, self.limit_query_param, minimum=1)
        if value is None:
            return self.default_limit
        return min(value, self.max_limit)

    def get_offset(self, request):
        return self._non_negative(request, self.offset_query_param, minimum=0, maximum=self.max_offset) or 0
