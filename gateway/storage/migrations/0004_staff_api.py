from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_staff')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['created_at', 'id']),
        ),
    ]
