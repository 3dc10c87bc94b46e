from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_message_essential')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['district', 'status', 'due_at']),
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['status', 'level']),
        ),
        ops.AddField(
            model_name='StaffMember',
            name='console_language',
            field=fields.CharField(null=True, description='the console language chosen by the member', max_length=10),
        ),
        ops.AddField(
            model_name='StaffMember',
            name='password_hash',
            field=fields.CharField(null=True, description='argon2id hash for the console (null: cannot sign in)', max_length=200),
        ),
        ops.AddField(
            model_name='StaffMember',
            name='password_link_expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='StaffMember',
            name='password_link_hash',
            field=fields.CharField(null=True, description='SHA-256 of the secret of a one-time set-password link', max_length=64),
        ),
    ]
