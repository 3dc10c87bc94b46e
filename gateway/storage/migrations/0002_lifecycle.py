from tortoise import migrations
from tortoise.migrations import operations as ops
from gateway.storage.models import EventKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('provider', fields.CharField(max_length=30)),
                ('provider_message_id', fields.CharField(max_length=100)),
                ('sender', fields.CharField(max_length=16)),
                ('text', fields.TextField(unique=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('intent', fields.CharField(null=True, max_length=20)),
                ('complaint', fields.ForeignKeyField('models.Complaint', source_field='complaint_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'inbound_message', 'app': 'models', 'unique_together': (('provider', 'provider_message_id'),), 'pk_attr': 'id', 'table_description': 'An SMS received. Its provider ID makes a retried callback a no-op.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Complaint',
            name='closed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Complaint',
            name='needs_review',
            field=fields.BooleanField(default=False, description='past the last level'),
        ),
        ops.AddField(
            model_name='Complaint',
            name='officer',
            field=fields.CharField(null=True, description='code of the officer', max_length=40),
        ),
        ops.AddField(
            model_name='Complaint',
            name='reminded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Complaint',
            name='resolved_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Complaint',
            name='transfers',
            field=fields.SmallIntField(default=0),
        ),
        ops.AlterField(
            model_name='ComplaintEvent',
            name='kind',
            field=fields.CharEnumField(description='REGISTERED: registered\nASSIGNED: assigned\nSTATUS_CHANGED: status_changed\nNOTE: note\nRESOLVED: resolved\nTRANSFERRED: transferred\nESCALATED: escalated\nFEEDBACK: feedback\nREMINDED: reminded\nCLOSED: closed\nREOPENED: reopened\nFLAGGED: flagged\nCITIZEN_MESSAGE: citizen_message\nMESSAGE_FAILED: message_failed', enum_type=EventKind, max_length=20),
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='second_chance',
            field=fields.BooleanField(default=False, description='retried once after failing'),
        ),
    ]
