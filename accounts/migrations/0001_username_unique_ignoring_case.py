"""A unique index on LOWER(username): two accounts never differ by case alone.

django.contrib.auth's user model is not ours to add a constraint to, so the index is
plain SQL (the same on SQLite and PostgreSQL). With usernames limited to ASCII by
``accounts.usernames``, LOWER means the same in both databases.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            sql="CREATE UNIQUE INDEX accounts_username_lower_uniq "
            "ON auth_user (LOWER(username))",
            reverse_sql="DROP INDEX accounts_username_lower_uniq",
        )
    ]
