from django.urls import path

from ops.status import views

app_name = "status"
urlpatterns = [
    path("", views.status, name="index"),
]
