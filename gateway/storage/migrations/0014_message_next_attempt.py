from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_unknown_answers')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboundMessage',
            name='next_attempt_at',
            field=fields.DatetimeField(null=True, description='when a retrying one is due', auto_now=False, auto_now_add=False),
        ),
        # Retries written before the column: due from their last try on, so that the sweep
        # takes any whose job is gone (at worst early, and sent once).
        ops.RunSQL(
            "UPDATE outbound_message SET next_attempt_at = updated_at WHERE status = 'retrying'",
            reverse_sql=ops.RunSQL.noop,
        ),
    ]
