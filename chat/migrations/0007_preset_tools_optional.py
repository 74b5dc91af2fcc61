from django.db import migrations, models


def empty_tools_mean_not_saved(apps, schema_editor):
    # Until now a preset never saved tools, so every stored [] means "not included".
    Preset = apps.get_model("chat", "Preset")
    empty = [p.pk for p in Preset.objects.only("pk", "tools") if p.tools == []]
    Preset.objects.filter(pk__in=empty).update(tools=None)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_message_created_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="preset",
            name="tools",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="preset",
            name="tool_choice",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(empty_tools_mean_not_saved, migrations.RunPython.noop),
    ]
