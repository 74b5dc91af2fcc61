import json

from django.db import migrations

from chat.render import render_markdown


def choices_rendered_again(apps, schema_editor):
    """Imports used to keep a choice as the file had it when its content was not text,
    "html" key included, and the page showed that HTML: render every choice again from
    its text (text that was not text becomes its JSON, shown escaped)."""
    Message = apps.get_model("chat", "Message")
    changed = []
    rows = Message.objects.filter(choices__isnull=False).select_related("conversation")
    for message in rows.only("pk", "choices", "conversation__mode").iterator(chunk_size=500):
        if not isinstance(message.choices, list):
            continue
        choices = []
        for choice in message.choices:
            if not isinstance(choice, dict):
                continue
            choice = {k: v for k, v in choice.items() if k != "html"}
            content = choice.get("content")
            if not isinstance(content, str):
                content = "" if content is None else json.dumps(content)
            choice["content"] = content
            if message.conversation.mode == "chat":
                choice["html"] = str(render_markdown(content))
            choices.append(choice)
        if choices != message.choices:
            message.choices = choices
            changed.append(message)
    Message.objects.bulk_update(changed, ["choices"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0007_preset_tools_optional"),
    ]

    operations = [
        migrations.RunPython(choices_rendered_again, migrations.RunPython.noop, elidable=True),
    ]
