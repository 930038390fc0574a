"""What drf-spectacular cannot infer about our API, said once for every endpoint.

- Every operation lists the error answers it can give, with the bodies our handlers write
  (core/api_errors.py, core/limits.py, DRF): 400 `{field: [messages]}` (or `{detail, ...}` from
  an ApplicationError), 401/403/404/413/429 `{detail}`, 409 `{detail, ...}` on writes.
- `Authorization: Bearer <token>` is described as the bearer scheme it is.
- Multi-valued filters (core.filters.MultiValueFilter) are arrays repeated in the query string.

Imported by config/urls.py, so it is loaded before any schema is generated. The schemas of the
plain APIViews that build their own bodies are said by each app (`<app>/openapi.py`, loaded by its
`api_urls.py`) with `schema_replaced` and `page_of` below.
"""

from __future__ import annotations

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_array_type
from drf_spectacular.utils import OpenApiResponse, extend_schema_view, inline_serializer
from rest_framework import serializers

from core.filters import MAX_VALUES, MultiValueFilter

DetailError = inline_serializer(
    name="DetailError",
    fields={"detail": serializers.CharField(help_text="what went wrong, in a sentence")},
)
# 400: field -> messages from a serializer or FilterSet, or `detail` (+ the field) from a refused request.
ValidationErrorBody = {
    "type": "object",
    "description": "Field name -> list of messages; `detail` when the refusal is not about one field.",
    "additionalProperties": {},
}
ConflictBody = {
    "type": "object",
    "description": "`detail` says what got there first; extra keys (e.g. `action`) name it.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": {},
}

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ScaleDeckAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {
            "400": OpenApiResponse(ValidationErrorBody, description="Bad input; nothing changed."),
            "401": OpenApiResponse(DetailError, description="No credentials, or an unknown, expired or revoked token."),
            "403": OpenApiResponse(DetailError, description="The role or the token's scope does not allow it."),
            "404": OpenApiResponse(DetailError, description="No such object (or not visible to this token)."),
            "429": OpenApiResponse(DetailError, description="Too many requests; see Retry-After."),
        }
        if self.method in WRITE_METHODS:
            errors["409"] = OpenApiResponse(ConflictBody, description="Someone or something got there first.")
            errors["413"] = OpenApiResponse(DetailError, description="The request body is too large.")
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, ["application/json"])
        return responses


def bound_integer_path_parameters(result, generator, request, public):
    """Ids in paths are whole numbers a column holds: Django's `<int:pk>` does not even match `-1`
    (its 404 is the site's page, not the API's), and nothing past 64 bits is ever stored."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path" and schema.get("type") == "integer":
                    schema.setdefault("minimum", 0)
                    schema.setdefault("maximum", 2**63 - 1)
    return result


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `manage.py apitoken_create` (sdk_...), in the header only.",
        }


class MultiValueFilterExtension(DjangoFilterExtension):
    """Our FilterSets' repeated parameters (`?namespace=a&namespace=b`) as exploded arrays."""

    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        if not isinstance(filter_field, MultiValueFilter):
            return super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        (parameter,) = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field.item)
        parameter["schema"] = {**build_array_type(parameter["schema"]), "maxItems": MAX_VALUES}
        parameter["style"], parameter["explode"] = "form", True
        if filter_field.label:
            parameter["description"] = f"{filter_field.label}; repeat for any of several values."
        return [parameter]


def page_of(name: str, row, **extra) -> serializers.Serializer:
    """A paginated answer's body (`core.pagination`): count, next, previous, `row` as results, and `extra`."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": row,
            **extra,
        },
    )


def schema_replaced(view_class, **methods):
    """`view_class` as the schema generator should read it: `methods` maps a method to its `extend_schema`."""
    return extend_schema_view(**methods)(type(view_class.__name__, (view_class,), {"__doc__": view_class.__doc__}))
