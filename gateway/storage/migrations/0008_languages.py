from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_review')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Citizen',
            name='latin_only',
            field=fields.BooleanField(default=False, description='the handset shows only Latin letters: SMS in GSM-7'),
        ),
    ]
