"""Weigh the site's pages as the demo user sees them: bytes of HTML and element counts.

    python bench/page_weight.py [--keep DIR]

Starts a private ``redis-server`` on a free loopback port, seeds a fresh SQLite database
in a temporary folder with ``seed_demo`` (2,000 items, 600 users, the defaults),
publishes a model with ``recompute``, then requests each page through Django's test
client, signed out and signed in as ``demo``. Prints one line per page: bytes, elements,
radio inputs and forms. Needs redis-server on the PATH.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = self.radios = self.forms = 0

    def handle_starttag(self, tag, attrs):
        self.elements += 1
        self.forms += tag == "form"
        self.radios += tag == "input" and ("type", "radio") in attrs


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the database (kept afterwards)")
    options = parser.parse_args()
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        raise SystemExit("redis-server is not on the PATH")
    folder = options.keep or Path(tempfile.mkdtemp(prefix="recsite-weight-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    redis = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="recsite.settings.base",
            DEBUG="1",
            RECSITE_VAR_DIR=str(folder),
            DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            RECOMPUTE_ON_WORKER_START="0",
        )
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        settings.ALLOWED_HOSTS = ["testserver"]
        time.sleep(0.3)
        call_command("migrate", verbosity=0)
        call_command("seed_demo", "--if-empty", verbosity=0)
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
    finally:
        redis.terminate()
        redis.wait()
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
