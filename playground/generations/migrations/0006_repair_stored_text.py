"""Repair text stored before submit refused it: a lone surrogate or a control character in a task's
input, output or error becomes U+FFFD and a NUL is dropped (`catalog.text.repair_text`), so the
pages of the tasks an older version let in render again. Reading now repairs too (the fields'
decoder), for any such row written later by an older process."""

from django.db import migrations, models

import playground.generations.models
from playground.catalog.text import repair_strings

REPAIRED_FIELDS = ("input", "output", "error")


def repair_stored_text(apps, schema_editor):
    """Rewrite every task whose stored JSON holds text that is not text; leave the others alone."""
    Task = apps.get_model("generations", "Task")
    for task in Task.objects.only("pk", *REPAIRED_FIELDS).iterator(chunk_size=500):
        changed = {}
        for name in REPAIRED_FIELDS:
            value = getattr(task, name)
            repaired = repair_strings(value)
            if repaired is not value:
                changed[name] = repaired
        if changed:
            Task.objects.filter(pk=task.pk).update(**changed)


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0005_input_files"),
    ]

    operations = [
        # First, while these fields still read stored text as it is.
        migrations.RunPython(repair_stored_text, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="task",
            name="error",
            field=models.JSONField(
                blank=True, decoder=playground.generations.models.RepairingJSONDecoder, null=True
            ),
        ),
        migrations.AlterField(
            model_name="task",
            name="input",
            field=models.JSONField(decoder=playground.generations.models.RepairingJSONDecoder),
        ),
        migrations.AlterField(
            model_name="task",
            name="output",
            field=models.JSONField(
                blank=True, decoder=playground.generations.models.RepairingJSONDecoder, null=True
            ),
        ),
    ]
