from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_settings')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboundMessage',
            name='essential',
            field=fields.BooleanField(default=False, description='sent to opted-out citizens too', db_default=False),
        ),
        # Messages written before the column: essential as their templates' files said then,
        # so that one still in flight keeps its second chance.
        ops.RunSQL(
            "UPDATE outbound_message SET essential = TRUE WHERE template IN ("
            "'complaint_registered', 'complaint_resolved', 'feedback_reminder', "
            "'status_reply', 'help_reply', 'not_understood', 'ticket_not_found')",
            reverse_sql=ops.RunSQL.noop,
        ),
    ]
