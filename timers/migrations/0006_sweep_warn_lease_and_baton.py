from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("timers", "0005_timer_event_fk_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="timedrole",
            name="warn_lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="timedrole",
            name="warn_lease_owner",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.CreateModel(
            name="SweepBaton",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=32, unique=True)),
                ("holder", models.CharField(blank=True, max_length=64)),
                ("held_until", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
