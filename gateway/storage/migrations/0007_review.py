from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_campaigns')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ComplaintEvent',
            name='due_at',
            field=fields.DatetimeField(null=True, description='the deadline in force before it', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ComplaintEvent',
            name='level',
            field=fields.SmallIntField(null=True, description="the complaint's level after it"),
        ),
        ops.AddField(
            model_name='ComplaintEvent',
            name='officer',
            field=fields.CharField(null=True, description='who held the complaint when it happened', max_length=40),
        ),
        ops.AddIndex(
            model_name='ComplaintEvent',
            index=Index(fields=['kind', 'created_at']),
        ),
        ops.AddIndex(
            model_name='ComplaintEvent',
            index=Index(fields=['complaint_id', 'created_at']),
        ),
    ]
