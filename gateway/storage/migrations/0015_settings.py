from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_message_next_attempt')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Setting',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('value', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'setting', 'app': 'models', 'pk_attr': 'name', 'table_description': 'A value the gateway chose at its first start and keeps (the ticket key).'},
            bases=['Model'],
        ),
    ]
