from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Greeting",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("text", models.CharField(max_length=200)),
                ("when", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
