from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0005_requeued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="progress",
            field=models.JSONField(
                blank=True,
                editable=False,
                help_text="While it runs: each step's records in and out and errors so far, "
                "and the step it is in (written at most every 0.5 s, never in a run's first "
                "0.5 s).",
                null=True,
                verbose_name="progress",
            ),
        ),
    ]
