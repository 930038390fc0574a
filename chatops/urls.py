from django.urls import path

from chatops import views

app_name = "chatops"

urlpatterns = [
    path("slack/", views.slack_command, name="slack-command"),
    path("slack/interactive/", views.slack_interaction, name="slack-interaction"),
]
