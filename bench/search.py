"""Time title search (``catalog.selectors.item_search``) against the old substring filter.

    DEBUG=1 python bench/search.py [QUERY ...] [--repeat 20]

Runs on the database the environment names (DATABASE_URL, else var/db.sqlite3; seed it
first with ``manage.py seed_demo``). For each query: the number of matches, the first
titles, and the best of five mean times of one catalogue page (24 items) plus its count,
in ms, for the search and for a plain ``title ILIKE %query%``.
"""

import argparse
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queries", nargs="*", default=["colony dark", "dark", "drak", "A"])
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    import django

    django.setup()
    from django.db import connection

    from catalog import selectors
    from catalog.models import Item

    def page(items):
        return list(items[:24]), items.count()

    print(f"{Item.objects.count()} items on {connection.vendor}")
    for query in options.queries:
        found, count = page(selectors.item_search(query=query))
        times = {}
        for name, build in [
            ("search", lambda q=query: selectors.item_search(query=q)),
            ("substring", lambda q=query: selectors.item_list().filter(title__icontains=q)),
        ]:
            runs = timeit.repeat(lambda b=build: page(b()), number=options.repeat, repeat=5)
            times[name] = min(runs) / options.repeat * 1000
        print(
            f"{query!r:16} {count:5d} matches, first {[i.title for i in found[:3]]}; "
            f"search {times['search']:.1f} ms, substring {times['substring']:.1f} ms"
        )


if __name__ == "__main__":
    main()
