from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_staff_api')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CampaignContact',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='contacts', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(max_length=16)),
            ],
            options={'table': 'campaign_contact', 'app': 'models', 'unique_together': (('campaign', 'phone'),), 'pk_attr': 'id', 'table_description': "A phone number of a campaign's uploaded CSV audience (de-duplicated per campaign)."},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='OutboundMessage',
            index=Index(fields=['campaign_id', 'status']),
        ),
    ]
