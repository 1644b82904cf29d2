"""The JSON API (django-ninja), mounted at /api/: routes under /api/v1/, docs at /api/docs."""
from ninja import NinjaAPI

api = NinjaAPI(title="Guildhall API", version="1", urls_namespace="api")
