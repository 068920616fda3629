from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Grade",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("student_id", models.IntegerField()),
                ("course", models.CharField(max_length=100)),
                ("grade", models.CharField(max_length=4)),
            ],
        ),
    ]
