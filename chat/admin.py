from __future__ import annotations

from django.contrib import admin

from chat.forms import ThrottledAdminAuthenticationForm
from chat.models import Conversation, EndpointProfile, Lane, Message, Preset

# The admin's log-in page is throttled like the app's.
admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(EndpointProfile)
class EndpointProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_url", "default_model", "masked_key", "is_demo"]
    list_filter = ["is_demo"]
    search_fields = ["name", "base_url", "owner__username"]
    # Ciphertext is never shown, not even to staff; keys are changed in the app.
    exclude = ["api_key_encrypted", "extra_headers_encrypted"]
    readonly_fields = ["masked_key", "models_fetched_at", "created_at", "updated_at"]


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "updated_at"]
    search_fields = ["name", "owner__username"]


class LaneInline(admin.TabularInline):
    model = Lane
    extra = 0
    fields = ["position", "profile", "model", "params"]


@admin.action(description="Revoke the share links of the selected conversations")
def revoke_share_links(modeladmin: admin.ModelAdmin, request: object, queryset: object) -> None:
    queryset.update(share_token=None, shared_at=None)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "mode", "pinned", "is_shared", "updated_at"]
    list_filter = ["mode", "pinned", ("share_token", admin.EmptyFieldListFilter)]
    search_fields = ["title", "owner__username"]
    inlines = [LaneInline]
    actions = [revoke_share_links]
    # The token is a capability: staff can revoke it, not read or set it.
    exclude = ["share_token"]
    readonly_fields = ["shared_at"]

    @admin.display(boolean=True, description="shared")
    def is_shared(self, obj: Conversation) -> bool:
        return bool(obj.share_token)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "turn", "role", "status", "finish_reason", "created_at"]
    list_filter = ["role", "status"]
    search_fields = ["content"]
    raw_id_fields = ["conversation", "lane"]
