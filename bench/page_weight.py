"""Weigh the site's pages as the demo user sees them: bytes of HTML and element counts.

    python bench/page_weight.py [--keep DIR]

Starts a private ``redis-server`` on a free loopback port, seeds a fresh SQLite database
in a temporary folder with ``seed_demo`` (2,000 items, 600 users, the defaults),
publishes a model with ``recompute``, then requests each page through Django's test
client, signed out and signed in as ``demo``. Prints one line per page: bytes, elements,
radio inputs and forms. Needs redis-server on the PATH.
"""

import argparse
import shutil
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.private_site import private_site  # noqa: E402


class _Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = self.radios = self.forms = 0

    def handle_starttag(self, tag, attrs):
        self.elements += 1
        self.forms += tag == "form"
        self.radios += tag == "input" and ("type", "radio") in attrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the database (kept afterwards)")
    options = parser.parse_args()
    folder = options.keep or Path(tempfile.mkdtemp(prefix="recsite-weight-"))
    try:
        with private_site(folder):
            _weigh()
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _weigh() -> None:
    """One line per page, signed out and as demo."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("recompute", "--if-missing", verbosity=0)

    from catalog.models import Item

    item = Item.objects.order_by("-rating_count").first()
    pages = {
        "home": "/",
        "catalogue": "/items/",
        "item": item.get_absolute_url(),
    }
    client = Client()
    for who in ("signed out", "demo"):
        if who == "demo":
            client.login(username="demo", password="demo")
            pages["my ratings"] = "/items/mine/"
        for name, url in pages.items():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            counter = _Counter()
            counter.feed(response.content.decode())
            print(
                f"{name:10} {who:10} {len(response.content):7,d} bytes "
                f"{counter.elements:5,d} elements {counter.radios:4d} radios "
                f"{counter.forms:3d} forms"
            )


if __name__ == "__main__":
    main()
