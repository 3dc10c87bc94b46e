from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_campaign_contact_order')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['citizen_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='OutboundMessage',
            index=Index(fields=['complaint_id']),
        ),
    ]
