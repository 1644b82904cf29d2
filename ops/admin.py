"""Admin for operational records: shard heartbeats, and API tokens (superusers only)."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.template import engines
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from config.replicas import LagTolerantLists
from ops.api_tokens import MAX_LIFETIME, api_token_create, api_token_revoke
from ops.models import API_TOKEN_LIFETIME, ApiToken, ShardHeartbeat


@admin.register(ShardHeartbeat)
class ShardHeartbeatAdmin(LagTolerantLists, admin.ModelAdmin):
    list_display = ("shard_id", "shard_count", "latency_ms", "guild_count", "hostname", "pid", "last_seen")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The page that shows a new key, the one time it is ever shown.
_KEY_CREATED = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% block breadcrumbs %}<div class="breadcrumbs"><a href="{% url 'admin:index' %}">Home</a> › Operations ›
  <a href="{{ changelist_url }}">API tokens</a> › API token created</div>{% endblock %}
{% block content %}
<div id="content-main">
  <p>The API token <strong>{{ token.name }}</strong> for <strong>{{ token.user }}</strong> is ready.
     Copy its key now: it is not stored and <strong>cannot be shown again</strong>.</p>
  <p><code id="api-token-key" style="font-size:1.2em;user-select:all">{{ key }}</code></p>
  <p>It works until <strong>{{ token.expires_at|date:"Y-m-d H:i" }} UTC</strong>{% if token.read_only %}, for reads only{% endif %}.
     Send it as <code>Authorization: Bearer &lt;key&gt;</code> to <code>/api/v1/…</code>.</p>
  <p><a href="{{ changelist_url }}">Back to the API tokens</a></p>
</div>
{% endblock %}"""
)


class ApiTokenCreateForm(forms.ModelForm):
    lifetime_days = forms.IntegerField(
        label="Works for (days)",
        initial=API_TOKEN_LIFETIME.days,
        min_value=1,
        max_value=MAX_LIFETIME.days,
        help_text=f"After this many days the token stops working (default {API_TOKEN_LIFETIME.days}).",
    )

    class Meta:
        model = ApiToken
        fields = ("user", "name", "read_only")
        help_texts = {"name": "What uses it (a script, a dashboard…)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user_field = self.fields.get("user")
        if isinstance(user_field, forms.ModelChoiceField):  # the add form; a saved token is shown read-only
            user_field.queryset = User.objects.filter(is_active=True, is_staff=True).order_by("username")
            user_field.help_text = "Only active staff users' tokens work."


@admin.register(ApiToken)
class ApiTokenAdmin(LagTolerantLists, admin.ModelAdmin):
    """Superusers only: create a token (its key is shown once), list them, revoke them."""

    form = ApiTokenCreateForm
    # Expiry and revocation before the creation time: at the admin's usual width the last columns scroll out of view.
    list_display = ("name", "user", "prefix", "read_only", "expires_at", "revoked_at", "last_used_at", "created_at")
    list_select_related = ("user", "created_by")
    list_filter = ("read_only",)
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke"]
    _SHOWN = ("name", "user", "prefix", "read_only", "created_at", "created_by", "expires_at", "last_used_at", "revoked_at")

    def _superuser(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._superuser(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request)

    def has_add_permission(self, request):
        return self._superuser(request)

    def has_change_permission(self, request, obj=None):
        return False  # tokens are created and revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return False  # revoked tokens stay, to show who had access

    def has_revoke_permission(self, request):
        return self._superuser(request)

    def get_fields(self, request, obj=None):
        return ("user", "name", "lifetime_days", "read_only") if obj is None else self._SHOWN

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self._SHOWN

    def save_model(self, request, obj, form, change):
        token, key = api_token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            created_by=request.user,
            lifetime=timedelta(days=form.cleaned_data["lifetime_days"]),
            read_only=form.cleaned_data["read_only"],
        )
        # The admin goes on with ``obj`` (history, response): make it the row the service saved.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state = token._state
        request._api_token_key = key

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_api_token_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "opts": self.model._meta,
            "token": obj,
            "key": key,
            "changelist_url": reverse("admin:ops_apitoken_changelist"),
        }
        response = HttpResponse(_KEY_CREATED.render(context, request))
        add_never_cache_headers(response)  # the key must not sit in a cache
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = sum(api_token_revoke(token=token, revoked_by=request.user) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
