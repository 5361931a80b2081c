"""The ratings table loses its index by item, (item, -updated): nothing the site does reads
ratings by item (pages and the API read them by user; item stats move by deltas; the
recount and the item's deletion scan the table once), and SQLite's first import had to
build it in one transaction that held the site's writes (~10 s at 10M ratings, past the
busy timeout at 25M; bench/README, stop 21 and stop 22).

``IF EXISTS``: a SQLite database whose import was cut short by an older version has the
index dropped already and listed in ``imp_pending_index`` for the next import to build;
that list (it only ever listed this index) goes too, so nothing builds it again.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["item", "-updated"], name="rating_item_recent_idx")


def drop_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX.name)}")
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS imp_pending_index")


def build_index(apps, schema_editor):
    schema_editor.add_index(apps.get_model("catalog", "Rating"), INDEX)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_item_popularity_band_hidden_user_idx")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="rating", name="rating_item_recent_idx")
            ],
            database_operations=[migrations.RunPython(drop_index, build_index)],
        )
    ]
