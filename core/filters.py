"""The FilterSet base every list uses, on the pages and the API alike (NetBox's conventions).

- Several values for one field: `?namespace=a&namespace=b` matches either.
- `<field>__ic` for each text filter: contains, in any case (`?name__ic=llama`).
- `q`: free text over the FilterSet's `search_fields`.
- `ordering`: one of the FilterSet's `ordering_fields`, `-` first for descending.
- An unknown parameter is an error naming it (a 400 on the API, an inline error on the pages):
  a typo like `?namspace=a` silently answering the whole fleet is how a bot scales the wrong
  thing. Paging and format parameters are not filters and are allowed.

Number filters accept only what their database column holds: `?deployment=9223372036854775808`
reached SQLite as a Python int past 64 bits and raised OverflowError (a 500); each value is now a
whole number bounded by the column's range, so it is a 400 naming the parameter.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import ForeignKey, IntegerField, Q
from django_filters.utils import get_model_field
from rest_framework import exceptions
from rest_framework.filters import BaseFilterBackend

# Parameters a list accepts that are not filters: the API's and the pages' paging, DRF's format.
NOT_FILTERS = frozenset({"limit", "offset", "page", "format"})
MAX_VALUES = 50  # per parameter: `?namespace=` repeated more is a mistake, not a query
MAX_TEXT = 253  # a Kubernetes name at most; longer text cannot match anything we store


def integer_column_range(model_field) -> tuple[int, int] | None:
    """(min, max) the column holds, or None when it is not an integer column."""
    if isinstance(model_field, ForeignKey):
        model_field = model_field.target_field
    if not isinstance(model_field, IntegerField):
        return None
    low, high = connection.ops.integer_field_range(model_field.get_internal_type())
    if low is None or high is None:  # a backend that does not say: assume 64 bits
        low, high = -(2**63), 2**63 - 1
    return low, high


class MultiValueInput(forms.TextInput):
    """Reads every value of a repeated parameter; blank values mean "no filter", as before."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        if values is None:
            return []
        if not isinstance(values, list | tuple):
            values = [values]
        return [v for v in values if v not in (None, "")]


class MultiValueField(forms.Field):
    """A list of values, each cleaned by `item_field` (a CharField, a bounded IntegerField, a ChoiceField)."""

    widget = MultiValueInput

    def __init__(self, *, item_field: forms.Field, **kwargs):
        self.item_field = item_field
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        values = list(value or [])
        if len(values) > MAX_VALUES:
            raise ValidationError(f"At most {MAX_VALUES} values, not {len(values)}.", code="max_values")
        return [self.item_field.clean(v) for v in values]


class MultiValueFilter(django_filters.Filter):
    """Any of several values, each validated like the single-value filter `item` it replaces."""

    field_class = MultiValueField

    def __init__(self, *, item: django_filters.Filter, **kwargs):
        self.item = item
        kwargs.setdefault("field_name", item.field_name)
        kwargs.setdefault("lookup_expr", item.lookup_expr)
        kwargs.setdefault("label", item._label)
        kwargs.setdefault("distinct", item.distinct)
        super().__init__(**kwargs)

    @property
    def field(self):
        if not hasattr(self, "_field"):
            self._field = MultiValueField(item_field=self.item.field, label=self.label)
        return self._field

    def filter(self, qs, value):
        if not value:
            return qs
        if self.lookup_expr == "exact":
            condition = Q(**{f"{self.field_name}__in": value})
        else:
            condition = Q()
            for v in value:
                condition |= Q(**{f"{self.field_name}__{self.lookup_expr}": v})
        qs = qs.filter(condition)
        return qs.distinct() if self.distinct else qs


def _text_item(lookup_expr: str, field_name: str, label: str | None) -> django_filters.CharFilter:
    return django_filters.CharFilter(field_name=field_name, lookup_expr=lookup_expr, label=label, max_length=MAX_TEXT)


class RangeCheckedFilterSet(django_filters.FilterSet):
    """The shared base (the name is older than the conventions above; every list already used it).

    Subclasses set `search_fields` (model paths searched, case-insensitively, by `q`) and
    `ordering_fields` (parameter value -> model path) to offer `q` and `ordering`.
    """

    search_fields: tuple[str, ...] = ()
    ordering_fields: dict[str, str] = {}

    @classmethod
    def get_filters(cls):
        """The declared filters made multi-valued, plus `__ic`, `q` and `ordering`: built once per
        class, so the API schema lists exactly the parameters the FilterSet accepts."""
        filters = {}
        for name, filter_ in super().get_filters().items():
            if filter_.method is not None or not isinstance(
                filter_, django_filters.CharFilter | django_filters.NumberFilter | django_filters.ChoiceFilter
            ):
                filters[name] = filter_
                continue
            if isinstance(filter_, django_filters.CharFilter) and not filter_.extra.get("max_length"):
                filter_.extra["max_length"] = MAX_TEXT
            filters[name] = MultiValueFilter(item=filter_)
            if isinstance(filter_, django_filters.CharFilter) and f"{name}__ic" not in filters:
                label = f"{filter_._label or name} contains (any case)"
                filters[f"{name}__ic"] = MultiValueFilter(
                    item=_text_item("icontains", filter_.field_name, label), label=label
                )
        if cls.search_fields:
            filters["q"] = django_filters.CharFilter(method="search", label="Search", max_length=MAX_TEXT)
        if cls.ordering_fields:
            filters["ordering"] = django_filters.OrderingFilter(
                fields=tuple((path, param) for param, path in cls.ordering_fields.items()), label="Order by"
            )
        return filters

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for filter_ in self.filters.values():
            item = getattr(filter_, "item", filter_)
            if not isinstance(item, django_filters.NumberFilter):
                continue
            bounds = integer_column_range(get_model_field(self._meta.model, item.field_name))
            if bounds is None:
                continue
            item.field_class = forms.IntegerField
            low, high = bounds
            item.extra["min_value"] = max(low, item.extra.get("min_value", low))
            item.extra["max_value"] = min(high, item.extra.get("max_value", high))
            for built in (item, filter_):  # a form field built before these bounds would not have them
                built.__dict__.pop("_field", None)

    def search(self, queryset, name, value):
        words = value.split()
        for word in words:
            condition = Q()
            for path in self.search_fields:
                condition |= Q(**{f"{path}__icontains": word})
            queryset = queryset.filter(condition)
        return queryset

    def unknown_parameters(self) -> list[str]:
        if not self.is_bound:
            return []
        return sorted(set(self.data) - set(self.filters) - NOT_FILTERS)

    @property
    def form(self):
        form = super().form
        if not getattr(self, "_unknown_checked", False):
            self._unknown_checked = True
            unknown = self.unknown_parameters()
            if unknown:
                form.full_clean()
                known = ", ".join(sorted(self.filters))
                for name in unknown:
                    form._errors[name[:60]] = form.error_class([f"Unknown filter. Filters here: {known}."])
        return form


def refuse_unknown_parameters(request, known) -> None:
    """A 400 naming every query parameter a view does not take (paging and format aside), for
    views without a FilterSet (the FilterSet refuses its own unknowns, above)."""
    known = set(known)
    unknown = sorted(set(request.query_params) - known - NOT_FILTERS)
    if unknown:
        taken = ", ".join(sorted(known)) or "none besides limit and offset"
        raise exceptions.ValidationError({name[:60]: [f"Unknown parameter. Parameters here: {taken}."]
                                          for name in unknown})  # fmt: skip


class UnknownParametersRefused(BaseFilterBackend):
    """The same refusal for lists and details with no FilterSet: `?namespace=a` on a list that
    cannot filter by it must not answer everything. A view that reads parameters itself names
    them in `query_parameters`."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "filterset_class", None) is None:
            refuse_unknown_parameters(request, getattr(view, "query_parameters", ()))
        return queryset

    def get_schema_operation_parameters(self, view):
        if getattr(view, "filterset_class", None) is not None:
            return []
        return [{"name": name, "required": False, "in": "query", "schema": {"type": "string"}}
                for name in getattr(view, "query_parameters", ())]  # fmt: skip
