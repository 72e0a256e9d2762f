from django.db import migrations


def hello(apps, schema_editor):
    Greeting = apps.get_model("greetings", "Greeting")
    Greeting.objects.create(text="hello from a migrated table")


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.RunPython(hello, migrations.RunPython.noop)]
