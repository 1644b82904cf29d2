"""Operational endpoints."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def health(request):
    """Liveness: the process answers. Touches no database, cache or disk."""
    return JsonResponse({"status": "pass"}, content_type="application/health+json")
