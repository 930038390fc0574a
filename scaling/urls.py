"""Scaling pages under /scaling/."""

from django.urls import path

from scaling import policy_views, slo_views, timeline_views, views, why_views

app_name = "scaling"

urlpatterns = [
    path("actions/", views.audit, name="audit"),
    path("actions/<int:action_id>/", views.action_detail, name="action"),
    path("actions/<int:action_id>/progress/", views.action_progress, name="action-progress"),
    path("actions/<int:action_id>/end/", views.override_end_now, name="override-end"),
    path("actions/<int:action_id>/revert/", policy_views.autoscaler_policy_revert_page, name="policy-revert"),
    path("deployments/<int:deployment_id>/autoscaler/", policy_views.autoscaler_policy_edit, name="policy-edit"),
    path("deployments/<int:deployment_id>/controls/", views.deployment_controls, name="deployment-controls"),
    path("deployments/<int:deployment_id>/whatif/", views.whatif, name="whatif"),
    path("deployments/<int:deployment_id>/whatif/<int:run_id>/", views.whatif_run_status, name="whatif-run"),
    path("deployments/<int:deployment_id>/rules/", views.deployment_rules, name="deployment-rules"),
    path(
        "deployments/<int:deployment_id>/timeline/",
        timeline_views.deployment_timeline_fragment,
        name="deployment-timeline",
    ),
    path("deployments/<int:deployment_id>/why/", why_views.deployment_why_fragment, name="deployment-why"),
    path("deployments/<int:deployment_id>/slo/", slo_views.deployment_slo, name="deployment-slo"),
    path("rules/", views.rules, name="rules"),
    path("rules/new/", views.rule_create, name="rule-create"),
    path("rules/preview/", views.rule_preview, name="rule-preview"),
    path("rules/<int:rule_id>/edit/", views.rule_edit, name="rule-edit"),
    path("rules/<int:rule_id>/delete/", views.rule_delete, name="rule-delete"),
    path("quotas/", views.quotas, name="quotas"),
    path("quotas/<int:quota_id>/edit/", views.quota_edit, name="quota-edit"),
]
