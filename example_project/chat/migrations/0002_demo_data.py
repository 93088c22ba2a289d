"""Demo data for the example: two users and #general. An example, not a deployment."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

DEMO_PASSWORD = "reactive-demo"  # printed by `make run`; change it if you expose the example


def create(apps, schema_editor):
    User = apps.get_model("auth", "User")
    for name, staff in (("ada", True), ("grace", False)):
        User.objects.get_or_create(
            username=name,
            defaults={"password": make_password(DEMO_PASSWORD), "is_staff": staff,
                      "is_superuser": staff},
        )
    apps.get_model("chat", "Channel").objects.get_or_create(name="general")


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
