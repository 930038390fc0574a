from django.urls import path

from scaling.alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alerts, name="alerts"),
    path("<int:alert_id>/", views.alert_detail, name="alert"),
    path("<int:alert_id>/act/", views.alert_act, name="alert-act"),
    path("receivers/", views.receivers, name="receivers"),
]
