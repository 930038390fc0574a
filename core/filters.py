"""A FilterSet base whose number filters accept only what their database column can hold.

`?deployment=9223372036854775808` reached SQLite as a Python int past 64 bits and raised
OverflowError (a 500). Every number filter on an integer column (ids and foreign keys included)
becomes a whole-number field bounded by that column's range, so such a value is a 400 naming
the parameter on the API and an inline filter error on the pages.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db import connection
from django.db.models import ForeignKey, IntegerField
from django_filters.utils import get_model_field


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


class RangeCheckedFilterSet(django_filters.FilterSet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for filter_ in self.filters.values():
            if not isinstance(filter_, django_filters.NumberFilter):
                continue
            bounds = integer_column_range(get_model_field(self._meta.model, filter_.field_name))
            if bounds is None:
                continue
            filter_.field_class = forms.IntegerField
            low, high = bounds
            filter_.extra["min_value"] = max(low, filter_.extra.get("min_value", low))
            filter_.extra["max_value"] = min(high, filter_.extra.get("max_value", high))
