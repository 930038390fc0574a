from django.urls import path

from costing import views

app_name = "costing"
urlpatterns = [
    path("", views.costs, name="costs"),
]
