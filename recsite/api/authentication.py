"""Token authentication with the lookup written as one SQL statement.

Every signed-in API call starts with this lookup. DRF's own (``select_related("user")
.get(key=...)``) spends most of its time building the query; this one reads the same
row with hand-written SQL and builds the same objects with ``Model.from_db``, after the
same value converters the ORM applies. Behaviour, errors and the header are DRF's:
tests/api/test_authentication.py checks them.

A subclass may read more about the token's user in the same statement (``extra_columns``:
SQL expressions over the user's id column; ``extra_found`` gets their values), as the
recommendations API does with the user's taste stamp.
"""

from functools import cache

from django.db import connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    # SQL expressions over the token's user id column (given as their argument), read in
    # the lookup's statement; their values go to ``extra_found``. None: nothing more.
    extra_columns = None

    def extra_found(self, token, values) -> None:
        """Called with the values of ``extra_columns`` for a valid token."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        connection = connections[model.objects.db]
        plan = _lookup(model, connection.alias, type(self).extra_columns)
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        values = list(row)
        for i, converters in plan.converters:
            for converter in converters:
                values[i] = converter(values[i], plan.columns[i], connection)
        n, m = len(plan.token_fields), len(plan.columns)
        token = model.from_db(connection.alias, plan.token_fields, values[:n])
        user = plan.user_model.from_db(connection.alias, plan.user_fields, values[n:m])
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if plan.extra:
            self.extra_found(token, values[m:])
        return (user, token)


class _Lookup:
    def __init__(self, model, alias, extra_columns=None):
        connection = connections[alias]
        q = connection.ops.quote_name
        user_field = model._meta.get_field("user")
        self.user_model = user_model = user_field.related_model
        token_fields = list(model._meta.concrete_fields)
        user_fields = list(user_model._meta.concrete_fields)
        self.token_fields = [f.attname for f in token_fields]
        self.user_fields = [f.attname for f in user_fields]
        self.columns = [f.get_col("t") for f in token_fields] + [
            f.get_col("u") for f in user_fields
        ]
        names = [f"t.{q(f.column)}" for f in token_fields] + [
            f"u.{q(f.column)}" for f in user_fields
        ]
        self.extra = list(extra_columns(f"t.{q(user_field.column)}")) if extra_columns else []
        names += self.extra
        self.sql = (
            f"SELECT {', '.join(names)} FROM {q(model._meta.db_table)} t"
            f" JOIN {q(user_model._meta.db_table)} u"
            f" ON u.{q(user_model._meta.pk.column)} = t.{q(user_field.column)}"
            f" WHERE t.{q(model._meta.pk.column)} = %s"
        )
        # The converters the ORM's compiler would apply to each column, backend's first.
        self.converters = []
        for i, column in enumerate(self.columns):
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((i, found))


@cache
def _lookup(model, alias, extra_columns=None) -> _Lookup:
    return _Lookup(model, alias, extra_columns)
