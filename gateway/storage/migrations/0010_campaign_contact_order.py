from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_bench_indexes')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='CampaignContact',
            index=Index(fields=['campaign_id', 'id']),
        ),
    ]
