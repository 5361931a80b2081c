import os
import resource
import sys
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts import usernames
from catalog.importers.formats import FORMATS, BadLine, open_source
from catalog.importers.loader import import_ratings


class Command(BaseCommand):
    help = (
        "Import ratings (and items with genres where the files have them) from MovieLens "
        "100k, 1M/10M, latest/20M/25M, or a CSV user,item,rating[,timestamp]. All or nothing: "
        "a bad line stops the import and nothing of it is merged, unless --skip-invalid. "
        "The file is checked whole first, then merged in short transactions, the site's "
        "writes going on: on SQLite a large file (beside the table) appended in user order "
        "with every index kept up (with --offline: in one transaction with "
        "every index built after the rows); on PostgreSQL by building the merged table "
        "beside the live one and swapping it in. Running the same import again completes "
        "an import that was cut short."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a data folder or a ratings file")
        parser.add_argument("--format", choices=sorted(FORMATS), help="skip detection")
        parser.add_argument(
            "--namespace",
            help="prefix for the users and items created (default: the format's name); "
            "importing again with the same namespace updates them",
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="skip bad lines and report them"
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--offline",
            action="store_const",
            const="offline",
            dest="mode",
            help="SQLite: the site is stopped; load in one transaction with the ratings "
            "table's indexes rebuilt, even into a table that holds ratings (the site's "
            "writes would wait for all of it)",
        )
        mode.add_argument(
            "--online",
            action="store_const",
            const="online",
            dest="mode",
            help="SQLite: upsert in short transactions with every index kept up, even a "
            "large file into an empty ratings table (slower than the append a large file "
            "gets by default, whose transactions are as short)",
        )

    def handle(self, *args, path, format, namespace, skip_invalid, mode, verbosity, **options):
        try:
            source = open_source(path, format)
        except ValueError as error:
            raise CommandError(str(error)) from None
        namespace = namespace or source.name
        try:  # users are named "<namespace>-<id>": the site's one username rule applies
            usernames.validate_generated(f"{namespace}-1")
        except ValidationError:
            raise CommandError(f"--namespace {namespace!r}: {usernames.INVALID_MESSAGE}") from None
        self.stdout.write(f"Importing {source.ratings_path} as {source.label} ...")
        size = os.path.getsize(source.ratings_path)
        started = time.perf_counter()
        bars = {}

        def bar(name: str, **kwargs) -> tqdm:
            if name not in bars:
                bars[name] = tqdm(
                    desc=name, disable=verbosity < 1, file=sys.stderr, mininterval=0.5, **kwargs
                )
            return bars[name]

        def merged(done: int, total: int) -> None:
            merge = bar("merge", total=total, unit=" ratings", unit_scale=True)
            merge.update(done - merge.n)

        def phase_ended(name: str) -> None:
            # -v2 and more: each phase as it ends, at once (bench/scale.py's write probe
            # follows them through a pipe).
            if verbosity >= 2:
                self.stdout.write(f"Phase {name} ended at {time.perf_counter() - started:.1f} s")
                self.stdout.flush()

        read = bar("read", total=size, unit="B", unit_scale=True)
        try:
            report = import_ratings(
                source,
                namespace=namespace,
                skip_invalid=skip_invalid,
                progress=read.update,
                merge_progress=merged,
                on_phase=phase_ended,
                mode=mode or "auto",
            )
        except BadLine as error:
            raise CommandError(f"{error}. Nothing was imported.") from None
        except ValidationError as error:  # a user id that makes no valid username
            raise CommandError(f"{error.messages[0]} Nothing was imported.") from None
        finally:
            for each in bars.values():
                each.close()
        elapsed = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {report.ratings_read} ratings ({report.ratings_written} written "
                f"after merging duplicates), {report.users_created} new users, "
                f"{report.items_created} new items in {elapsed:.1f} s "
                f"(peak memory {peak_mib:.0f} MiB)."
            )
        )
        phases = ", ".join(
            f"{name} {seconds:.1f} s (CPU {report.cpu_seconds[name]:.1f})"
            for name, seconds in report.seconds.items()
        )
        self.stdout.write(f"Phases: {phases}.")
        if report.skipped_count:
            self.stdout.write(
                self.style.WARNING(f"Skipped {report.skipped_count} invalid line(s):")
            )
            for line in report.skipped:
                self.stdout.write(f"  {line}")
            if report.skipped_count > len(report.skipped):
                self.stdout.write(f"  ... and {report.skipped_count - len(report.skipped)} more")
