import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reactive", "0007_storage"),
        ("testapp", "0004_soundness"),
    ]

    operations = [
        migrations.CreateModel(
            name="Photo",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("caption", models.CharField(blank=True, max_length=100)),
                ("file", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="reactive.storedfile")),
            ],
        ),
    ]
