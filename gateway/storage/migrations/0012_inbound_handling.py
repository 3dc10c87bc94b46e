from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_citizen_and_message_lookups')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ComplaintEvent',
            name='source_key',
            field=fields.CharField(null=True, unique=True, max_length=160),
        ),
        ops.AlterModelOptions(
            name='InboundMessage',
            options={'table': 'inbound_message', 'app': 'models', 'unique_together': (('provider', 'provider_message_id'),), 'pk_attr': 'id', 'table_description': 'An SMS received. Its provider ID finds it again when the provider retries the'},
        ),
        ops.AddField(
            model_name='InboundMessage',
            name='claimed_until',
            field=fields.DatetimeField(null=True, description='being handled (by one request) until then, unless it ends first', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='InboundMessage',
            name='handled_at',
            field=fields.DatetimeField(null=True, description='acted on and answered', auto_now=False, auto_now_add=False),
        ),
        # Every message received before this was handled when it came: a late retry of
        # one stays a duplicate.
        ops.RunSQL('UPDATE "inbound_message" SET "handled_at" = "received_at"'),
    ]
