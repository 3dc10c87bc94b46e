from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0018_channels_missed_calls')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Citizen',
            name='script',
            field=fields.CharField(null=True, description='ISO 15924: the script the handset draws, if marked', max_length=4),
        ),
    ]
