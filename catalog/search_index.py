"""The full-text index behind ``catalog.selectors.item_search``, one per database.

SQLite: an FTS5 table over ``catalog_item.title`` (an external-content table, so titles
are not stored twice), kept in step by three triggers, plus an ``fts5vocab`` view of its
words for the spelling fallback. PostgreSQL: two GIN indexes (the ``simple`` text-search
vector and ``pg_trgm`` trigrams of the title); no triggers are needed there.

``install`` is idempotent. The migration runs it, and so does ``post_migrate``: on SQLite
a later migration that rebuilds ``catalog_item`` (Django copies the table for most
``AlterField``s) drops its triggers with the old table, and a missing trigger would let
the index fall silently out of step.
"""

FTS_TABLE = "catalog_item_fts"
VOCAB_TABLE = "catalog_item_fts_vocab"

_SQLITE_TABLES = [
    # unicode61 with diacritics removed: "Amélie" is found by "amelie".
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "title, content='catalog_item', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB_TABLE} USING fts5vocab({FTS_TABLE}, 'row')",
]
_SQLITE_TRIGGERS = {
    "catalog_item_fts_insert": (
        "AFTER INSERT ON catalog_item BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, title) VALUES (new.id, new.title); END"
    ),
    "catalog_item_fts_delete": (
        "AFTER DELETE ON catalog_item BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title) "
        "VALUES ('delete', old.id, old.title); END"
    ),
    "catalog_item_fts_update": (
        "AFTER UPDATE OF title ON catalog_item BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title) "
        "VALUES ('delete', old.id, old.title); "
        f"INSERT INTO {FTS_TABLE}(rowid, title) VALUES (new.id, new.title); END"
    ),
}
# pg_trgm itself comes from the migration's TrigramExtension.
_POSTGRES = [
    # The same expression SearchVector("title", config="simple") writes, so it is used.
    "CREATE INDEX IF NOT EXISTS catalog_item_title_tsv_idx ON catalog_item "
    "USING gin (to_tsvector('simple'::regconfig, COALESCE(title, '')))",
    "CREATE INDEX IF NOT EXISTS catalog_item_title_trgm_idx ON catalog_item "
    "USING gin (title gin_trgm_ops)",
]


def install(connection) -> None:
    """Create whatever part of the index is missing on ``connection``'s database."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            existing = {row[0] for row in cursor.fetchall()}
            for sql in _SQLITE_TABLES:
                cursor.execute(sql)
            missing = [name for name in _SQLITE_TRIGGERS if name not in existing]
            for name in missing:
                cursor.execute(f"CREATE TRIGGER {name} {_SQLITE_TRIGGERS[name]}")
            if missing:
                # Whatever changed while a trigger was missing is read again from the titles.
                cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        elif connection.vendor == "postgresql":
            for sql in _POSTGRES:
                cursor.execute(sql)


def uninstall(connection) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in _SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(f"DROP TABLE IF EXISTS {VOCAB_TABLE}")
            cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
        elif connection.vendor == "postgresql":
            cursor.execute("DROP INDEX IF EXISTS catalog_item_title_tsv_idx")
            cursor.execute("DROP INDEX IF EXISTS catalog_item_title_trgm_idx")


def install_after_migrate(sender, *, using, **kwargs) -> None:
    """``post_migrate`` receiver: put back triggers a table rebuild dropped."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    applied = MigrationRecorder(connection).applied_migrations()
    if ("catalog", "0003_item_search_index") in applied:
        install(connection)
