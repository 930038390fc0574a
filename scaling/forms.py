"""Browser forms. They check types; the services decide, and their refusals become inline errors."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator

from core.errors import ApplicationError, form_error_add
from core.validators import no_control_characters
from fleet.models import ModelDeployment
from scaling import decisions
from scaling.quota_keys import MAX_QUOTA_DEVICES, RESOURCE_NAME_MAX, quota_key_error
from scaling.templatetags.scaling_pages import quota_entry_label

DURATIONS = [
    ("", "until changed"),
    ("30", "30 min"),
    ("60", "1 hour"),
    ("120", "2 hours"),
    ("240", "4 hours"),
    ("480", "8 hours"),
]


def _page_words(error: ApplicationError) -> str:
    """The refusal in the page's words. The services' messages are shared with the API and name
    its fields ("ask again with raise_max", "send force"); on a page the way out is a tick box."""
    extra = error.extra
    if error.code == "above_max":
        return (
            f"{extra['requested']} is above the autoscaler's max ({extra['max_replicas']}): "
            "tick \u201craise the max too\u201d to raise it as well"
        )
    if error.code == "min_above_max":
        return (
            f"that would put the floor ({extra['min_replicas']}) above the autoscaler's max "
            f"({extra['max_replicas']}): tick \u201craise the max too\u201d to raise it as well"
        )
    if error.code == "below_usage":
        return (
            f"{quota_entry_label(extra['resource'])} {extra['requested']} is below what the namespace uses now "
            f"({extra['used']}): running pods keep their GPUs but new ones would not start; tick "
            "\u201clower below current usage anyway\u201d to do it anyway"
        )
    return error.message


def add_service_error(form: forms.Form, error: ApplicationError, field_map: dict[str, str] | None = None) -> None:
    """Show a service's refusal next to the input at fault (or above the form), in the page's words."""
    form_error_add(form, error, field_map=field_map, message=_page_words(error))


class ScaleForm(forms.Form):
    replicas = forms.IntegerField(min_value=0, max_value=decisions.MAX_REPLICAS)
    mode = forms.ChoiceField(
        choices=[("floor", "floor: at least N"), ("pin", "pin: exactly N")],
        initial="floor",
    )
    duration = forms.ChoiceField(choices=DURATIONS, required=False, initial="120")
    reason = forms.CharField(
        max_length=2000,
        strip=True,
        validators=[no_control_characters],
        widget=forms.TextInput(attrs={"placeholder": "why?"}),
    )
    raise_max = forms.BooleanField(required=False, label="raise the max too")
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    FIELD_MAP = {"ttl_minutes": "duration"}

    @property
    def ttl_minutes(self) -> int | None:
        value = self.cleaned_data.get("duration")
        return int(value) if value else None


class PrescaleRuleForm(forms.Form):
    deployment = forms.ModelChoiceField(
        queryset=ModelDeployment.objects.alive()
        .select_related("cluster")
        .order_by("cluster__name", "namespace", "name"),
    )
    cron = forms.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5")
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin")
    min_replicas = forms.IntegerField(min_value=0, max_value=decisions.MAX_REPLICAS, label="Floor (min replicas)")
    duration_minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, label="Duration (minutes)")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deployment"].label_from_instance = lambda d: f"{d.cluster.name} · {d.namespace}/{d.name}"


class QuotaForm(forms.Form):
    """One input per GPU entry the quota has, plus one new entry."""

    reason = forms.CharField(max_length=2000, strip=True, validators=[no_control_characters])
    force = forms.BooleanField(required=False, label="lower below current usage anyway")
    new_resource = forms.CharField(
        max_length=RESOURCE_NAME_MAX,
        required=False,
        label="Add entry",
        help_text="e.g. requests.nvidia.com/mig-3g.40gb",
    )
    new_value = forms.IntegerField(min_value=0, max_value=MAX_QUOTA_DEVICES, required=False, label="Hard limit")

    def __init__(self, *args, quota, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = sorted(quota.hard or {})
        for i, key in enumerate(self.keys):
            self.fields[f"hard_{i}"] = forms.IntegerField(
                min_value=0, max_value=MAX_QUOTA_DEVICES, label=key, initial=(quota.hard or {}).get(key)
            )

    def hard_fields(self):
        return [self[f"hard_{i}"] for i in range(len(self.keys))]

    def clean_new_resource(self):
        key = self.cleaned_data.get("new_resource", "").strip()
        problem = quota_key_error(key) if key else None
        if problem:
            raise forms.ValidationError(problem)
        return key

    def clean(self):
        data = super().clean()
        if bool(data.get("new_resource")) != (data.get("new_value") is not None):
            raise forms.ValidationError("give both the new entry's name and its hard limit, or neither")
        return data

    def changes(self, quota) -> dict[str, int]:
        current = quota.hard or {}
        hard = {
            key: self.cleaned_data[f"hard_{i}"]
            for i, key in enumerate(self.keys)
            if self.cleaned_data.get(f"hard_{i}") is not None and self.cleaned_data[f"hard_{i}"] != current.get(key)
        }
        if self.cleaned_data.get("new_resource"):
            hard[self.cleaned_data["new_resource"].strip()] = self.cleaned_data["new_value"]
        return hard


class WhatIfForm(forms.Form):
    """Candidates one per line; each line is parsed here so a bad one is shown next to the box."""

    policies = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "mono"}),
        help_text="one per line, at most 4: keda min=2 max=12 target=5 · "
        "hpa min=2 max=8 metric=gpu_utilization target=0.7 · none min=6",
    )
    hours = forms.FloatField(initial=6)
    spike = forms.FloatField(
        required=False, label="Spike (x traffic)", help_text="optional: multiply the traffic by this from 1 hour in"
    )

    def __init__(self, *args, max_hours: float, **kwargs):
        """`max_hours`: the cluster's limit (scaling.whatif.max_hours), 24 on a simulated cluster,
        168 (7 days) of a real cluster's measured history."""
        super().__init__(*args, **kwargs)
        hours = self.fields["hours"]
        hours.max_value = max_hours
        hours.validators.append(MaxValueValidator(max_hours))
        hours.widget.attrs["max"] = f"{max_hours:g}"
        hours.help_text = f"above 0, at most {max_hours:g}"

    def clean_policies(self):
        from scaling.whatif import MAX_CANDIDATES, parse_policy

        lines = [line for line in self.cleaned_data["policies"].splitlines() if line.strip()]
        if not lines:
            raise forms.ValidationError("give at least one policy")
        if len(lines) > MAX_CANDIDATES:
            raise forms.ValidationError(f"at most {MAX_CANDIDATES} policies, so the run stays quick")
        candidates = []
        for line in lines:
            try:
                candidates.append(parse_policy(line))
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from exc
        return candidates
