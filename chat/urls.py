from __future__ import annotations

from django.urls import path

from chat import history_urls
from chat.views import chat, compare, endpoints, inspector, panel, tools
from chat.views import compat as compat_views

app_name = "chat"

urlpatterns = [
    path("", chat.index, name="index"),
    path("c/new/", chat.conversation_new, name="conversation_new"),
    path("c/<uuid:conversation_id>/", chat.conversation_detail, name="conversation"),
    path(
        "c/<uuid:conversation_id>/settings/",
        chat.conversation_settings,
        name="conversation_settings",
    ),
    path("c/<uuid:conversation_id>/mode/", chat.conversation_mode, name="conversation_mode"),
    path("c/<uuid:conversation_id>/delete/", chat.conversation_delete, name="conversation_delete"),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/branch/",
        chat.message_branch,
        name="message_branch",
    ),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/delete/",
        chat.message_delete,
        name="message_delete",
    ),
    path(
        "c/<uuid:conversation_id>/turn/<int:turn>/version/<int:branch>/",
        chat.version_show,
        name="version_show",
    ),
    path("c/<uuid:conversation_id>/params/", panel.params_save, name="params_save"),
    path("c/<uuid:conversation_id>/params/panel/", panel.params_panel, name="params_panel"),
    path("c/<uuid:conversation_id>/presets/save/", panel.preset_save, name="preset_save"),
    path("c/<uuid:conversation_id>/presets/apply/", panel.preset_apply, name="preset_apply"),
    path("c/<uuid:conversation_id>/presets/delete/", panel.preset_delete, name="preset_delete"),
    path("c/<uuid:conversation_id>/code/", inspector.draft_code, name="draft_code"),
    path("c/<uuid:conversation_id>/tools/", tools.tools_save, name="tools_save"),
    path("c/<uuid:conversation_id>/lanes/add/", compare.lane_add, name="lane_add"),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/duplicate/",
        compare.lane_duplicate,
        name="lane_duplicate",
    ),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/remove/",
        compare.lane_remove,
        name="lane_remove",
    ),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/move/<str:direction>/",
        compare.lane_move,
        name="lane_move",
    ),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/settings/",
        compare.lane_settings,
        name="lane_settings",
    ),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/sweep/",
        compare.lane_sweep,
        name="lane_sweep",
    ),
    path(
        "c/<uuid:conversation_id>/lanes/<int:lane_id>/turn/<int:turn>/attempt/<int:attempt>/",
        compare.attempt_show,
        name="attempt_show",
    ),
    path("c/<uuid:conversation_id>/blind/", compare.blind_toggle, name="blind_toggle"),
    path("c/<uuid:conversation_id>/turn/<int:turn>/vote/", compare.vote, name="vote"),
    path("c/<uuid:conversation_id>/turn/<int:turn>/diff/", compare.diff, name="diff"),
    path("c/<uuid:conversation_id>/setup/", compare.setup_link, name="setup_link"),
    path("compare/setup/", compare.setup_open, name="setup_open"),
    path("leaderboard/", compare.leaderboard, name="leaderboard"),
    path("c/<uuid:conversation_id>/tools/edit/", tools.tools_edit, name="tools_edit"),
    path("c/<uuid:conversation_id>/tools/panel/", tools.tools_panel, name="tools_panel"),
    path("c/<uuid:conversation_id>/tools/shared/", tools.tools_shared, name="tools_shared"),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/inspect/",
        inspector.message_inspect,
        name="message_inspect",
    ),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/source/",
        inspector.message_source,
        name="message_source",
    ),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/code/",
        inspector.message_code,
        name="message_code",
    ),
    path(
        "c/<uuid:conversation_id>/m/<int:message_id>/choose/<int:index>/",
        inspector.message_choose,
        name="message_choose",
    ),
    path("models/", chat.model_options, name="model_options"),
    path("endpoints/", endpoints.endpoint_list, name="endpoints"),
    path("endpoints/new/", endpoints.endpoint_new, name="endpoint_new"),
    path("endpoints/<uuid:profile_id>/", endpoints.endpoint_edit, name="endpoint_edit"),
    path("endpoints/<uuid:profile_id>/delete/", endpoints.endpoint_delete, name="endpoint_delete"),
    path("endpoints/<uuid:profile_id>/test/", endpoints.endpoint_test, name="endpoint_test"),
    path("endpoints/<uuid:profile_id>/models/", endpoints.endpoint_models, name="endpoint_models"),
    path("healthz", endpoints.healthz, name="healthz"),
    # The compatibility report of an endpoint profile.
    path("endpoints/<uuid:profile_id>/compat/", compat_views.compat_panel, name="compat_panel"),
    path(
        "endpoints/<uuid:profile_id>/compat/start/",
        compat_views.compat_start,
        name="compat_start",
    ),
    path(
        "endpoints/<uuid:profile_id>/compat/apply/",
        compat_views.compat_apply,
        name="compat_apply",
    ),
]

# The conversation history: sidebar, search, export / import, share links.
urlpatterns += history_urls.urlpatterns
