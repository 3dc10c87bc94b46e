from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from gateway.storage.models import CampaignStatus, StaffRole
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_lifecycle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('actor', fields.CharField(description='staff:<username>, cli, system', max_length=64)),
                ('action', fields.CharField(max_length=40)),
                ('target', fields.CharField(null=True, max_length=80)),
                ('detail', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_record', 'app': 'models', 'indexes': [Index(fields=['actor', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A staff action that is not a complaint event (tokens, campaigns, reports): kept forever.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=40)),
                ('name', fields.CharField(max_length=80)),
                ('role', fields.CharEnumField(description='AGENT: agent\nOFFICER: officer\nDISTRICT_ADMIN: district_admin\nSTATE_REVIEWER: state_reviewer\nSTATE_ADMIN: state_admin', enum_type=StaffRole, max_length=20)),
                ('department', fields.CharField(null=True, description='officers, null for all', max_length=40)),
                ('level', fields.CharField(null=True, description='officers: a level code', max_length=20)),
                ('area', fields.CharField(null=True, description='block, tehsil or district code for the level', max_length=40)),
                ('district', fields.CharField(null=True, description='district admins, agents', max_length=40)),
                ('officer_code', fields.CharField(null=True, description='the config officer this account acts as', max_length=40)),
                ('phone', fields.CharField(null=True, max_length=16)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'staff_member', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A member of district or state staff, or a call-centre agent, who uses the staff API.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.StaffMember', source_field='staff_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(description='shown in listings to tell tokens apart', max_length=12)),
                ('label', fields.CharField(null=True, max_length=80)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_token', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A bearer token for the staff API: only its SHA-256 is kept.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_by', fields.ForeignKeyField('models.StaffMember', source_field='created_by_id', db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(default=CampaignStatus.DRAFT, description='DRAFT: draft\nSENDING: sending\nPAUSED: paused\nCANCELLED: cancelled\nDONE: done', enum_type=CampaignStatus, max_length=12)),
                ('template', fields.CharField(max_length=60)),
                ('variables', fields.JSONField(description='template variables, same in every language', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('audience', fields.JSONField(description="{'filter': {...}} or {'csv': <upload id>}", encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('scope', fields.JSONField(description="the creator's scope when it was made", encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('essential', fields.BooleanField(default=False, description='sent to opted-out citizens too')),
                ('recipients_total', fields.IntField(default=0)),
                ('segments_total', fields.IntField(default=0)),
                ('skipped', fields.IntField(default=0, description='opted out, or not a phone number')),
                ('cursor', fields.CharField(null=True, description='where writing recipients stopped (resumable)', max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A bulk status notification: one DLT template to many citizens, each in their language.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='campaign',
            field=fields.ForeignKeyField('models.Campaign', source_field='campaign_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT),
        ),
    ]
