"""A token's one use per merchant moves from its own table (TokenUse) onto the transaction it
paid for: a charge is then one INSERT, which the unique (token, merchant_id) index lets through
once. Tokens used before this migration are expired, since their uses are not carried over."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def expire_used_tokens(apps, schema_editor):
    Token = apps.get_model("sandbox_gateway", "Token")
    Token.objects.filter(uses__isnull=False, expires_at__gt=timezone.now()).update(
        expires_at=timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("sandbox_gateway", "0002_redundant_indexes"),
    ]

    operations = [
        migrations.RunPython(expire_used_tokens, migrations.RunPython.noop, elidable=True),
        migrations.DeleteModel(
            name="TokenUse",
        ),
        migrations.AddField(
            model_name="transaction",
            name="token",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transactions",
                to="sandbox_gateway.token",
            ),
        ),
        migrations.AddConstraint(
            model_name="transaction",
            constraint=models.UniqueConstraint(
                fields=("token", "merchant_id"), name="sandbox_token_once"
            ),
        ),
    ]
