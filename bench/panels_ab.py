"""A/B of the panels in one process against the same published model: the panel templates
of an earlier commit (``--base``) against the current tags: CPU time per render, and
whether both give the same HTML.

    python bench/panels_ab.py --base main --renders 300   # in the site's environment

Run with the environment of a site that has a published model (DATABASE_URL, REDIS_URL).
"""

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit whose templates are 'old'")
    parser.add_argument("--renders", type=int, default=300)
    options = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.template import Context, Template

    from catalog.models import Item
    from recommendations.conf import get
    from recommendations.templatetags import recommendation_panels as panels

    def old_template(name: str) -> Template:
        git = ["git", "-C", str(ROOT), "show", f"{options.base}:templates/recommendations/{name}"]
        return Template(subprocess.run(git, capture_output=True, text=True, check=True).stdout)

    enough = get("MIN_RATINGS_FOR_PERSONAL")
    users = get_user_model().objects.annotate(k=Count("ratings")).filter(k__gte=enough)
    people = list(users.order_by("?")[:200])
    popular = list(Item.objects.order_by("-rating_count")[:500])
    rng = random.Random(3)
    cases = {
        "people_like_you": (
            "{% people_like_you user %}",
            "_people_like_you.html",
            lambda c: panels.people_like_you_context(user=c["user"], page_path="/"),
        ),
        "because_you_rated": (
            "{% because_you_rated user %}",
            "_because_you_rated.html",
            lambda c: panels.because_you_rated_context(user=c["user"], page_path="/"),
        ),
        "also_liked": (
            "{% also_liked item %}",
            "_also_liked.html",
            lambda c: panels.also_liked_context(item=c["item"], user=c["user"], page_path="/"),
        ),
    }

    def context() -> dict:
        user, item = rng.choice(people), rng.choice(popular)
        return {"user": user, "item": item, "page_path": "/", "csrf_token": "x" * 64}

    for name, (tag, template_name, panel_context) in cases.items():
        new, old = Template("{% load recommendation_panels %}" + tag), old_template(template_name)

        def run_new(c, new=new):
            return new.render(Context(c))

        def run_old(c, old=old, panel_context=panel_context):
            extra = {"user": c["user"], "csrf_token": c["csrf_token"]}
            return old.render(Context(panel_context(c) | extra))

        same = sum(run_old(c) == run_new(c) for c in (context() for _ in range(20)))
        print(f"{name}: old == new HTML for {same}/20 random contexts", flush=True)
        for label, render in (("old", run_old), ("new", run_new)):
            for _ in range(30):
                render(context())
            times, cards = [], 0
            for _ in range(options.renders):
                c = context()
                began = time.process_time()
                html = render(c)
                times.append((time.process_time() - began) * 1000)
                cards += html.count('class="card suggestion"')
            times.sort()
            p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
            print(
                f"{name:<18} {label:<4} CPU p50 {statistics.median(times):.2f} p99 {p99:.2f} ms"
                f" ({cards / options.renders:.1f} cards a panel)",
                flush=True,
            )


if __name__ == "__main__":
    main()
