from tortoise import migrations
from tortoise.migrations import operations as ops
from gateway.storage.models import MessageStatus
from tortoise import fields


class AlterDescription(ops.AlterField):
    """An AlterField that changes only a column's description (here, the enum's list of
    statuses). On SQLite tortoise 1.1 rebuilds the table for any AlterField and drops its
    indexes; a description is no schema there, so only the migration state moves.
    Elsewhere the column's comment is updated as usual."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [('models', '0012_inbound_handling')]

    initial = False

    operations = [
        AlterDescription(
            model_name='OutboundMessage',
            name='status',
            field=fields.CharEnumField(default=MessageStatus.QUEUED, description='QUEUED: queued\nSENDING: sending\nRETRYING: retrying\nSENT: sent\nUNKNOWN: unknown\nDELIVERED: delivered\nFAILED: failed', enum_type=MessageStatus, max_length=12),
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='lost_answers',
            field=fields.SmallIntField(default=0, description='sends whose answer was lost (status unknown)', db_default=0),
        ),
    ]
