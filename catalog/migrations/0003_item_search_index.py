"""The title search index: FTS5 and its triggers on SQLite, pg_trgm and GIN indexes on
PostgreSQL (see catalog/search_index.py). Other databases get nothing and search falls
back to substring matching."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


def forwards(apps, schema_editor):
    from catalog import search_index

    search_index.install(schema_editor.connection)


def backwards(apps, schema_editor):
    from catalog import search_index

    search_index.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_hidden_item")]

    operations = [
        # A no-op on any database but PostgreSQL.
        TrigramExtension(),
        migrations.RunPython(forwards, backwards),
    ]
