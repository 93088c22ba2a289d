"""Messages may carry an image stored with ctx.storage (a caption is then optional)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_search"), ("reactive", "0007_storage")]

    operations = [
        migrations.AlterField(
            model_name="message", name="body", field=models.TextField(blank=True, max_length=2000),
        ),
        migrations.AddField(
            model_name="message",
            name="image",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                related_name="+", to="reactive.storedfile",
            ),
        ),
    ]
