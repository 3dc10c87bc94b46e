from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0017_console_staff_and_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MissedCall',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('provider', fields.CharField(max_length=30)),
                ('call_id', fields.CharField(max_length=100)),
                ('phone', fields.CharField(max_length=16)),
                ('called', fields.CharField(null=True, max_length=20)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('replied', fields.BooleanField(default=False, description='an SMS went back for it')),
            ],
            options={'table': 'missed_call', 'app': 'models', 'unique_together': (('provider', 'call_id'),), 'indexes': [Index(fields=['phone', 'received_at'])], 'pk_attr': 'id', 'table_description': "A missed call to the helpline's number, and whether the caller was texted back (at"},
            bases=['Model'],
        ),
    ]
