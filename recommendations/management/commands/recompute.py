from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations import pipeline, store


class Command(BaseCommand):
    help = (
        "Recompute the neighbour model from all ratings and publish it. Runs here with a "
        "progress bar, or with --queue on the Celery workers (sharded across them)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--queue", action="store_true", help="hand it to the workers")
        parser.add_argument(
            "--if-missing", action="store_true", help="only when no model is published"
        )

    def handle(self, *args, queue, if_missing, verbosity, **options):
        try:
            if if_missing and store.live_model() is not None:
                self.stdout.write("A model is already published; nothing to do.")
                return
        except store.RedisUnavailable as error:
            raise CommandError(f"Redis is unavailable: {error}") from None
        if queue:
            run = pipeline.recompute_start(trigger="command")
            self.stdout.write(f"Recompute #{run.pk} queued; follow it in the admin.")
            return
        with tqdm(desc="shards", unit="shard", disable=verbosity < 1) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done)

            run = pipeline.recompute_sync(trigger="command", progress=progress)
        if run.status != run.Status.SUCCEEDED:
            raise CommandError(f"Recompute #{run.pk} {run.status}: {run.error}")
        seconds = run.duration.total_seconds()
        self.stdout.write(
            self.style.SUCCESS(
                f"Published {run.version}: {run.n_ratings} ratings, {run.n_users} users, "
                f"{run.n_items} items in {seconds:.1f} s."
            )
        )
