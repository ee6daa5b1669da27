from django.db import migrations

from pops.core.db import append_only


class Migration(migrations.Migration):
    dependencies = [("core", "0002_initial")]
    operations = [append_only("core_auditevent")]
