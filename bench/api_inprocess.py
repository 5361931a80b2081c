"""Time API requests in-process: Django's WSGI handler called directly, no HTTP server.

    python bench/api_inprocess.py TOKENS_FILE PATH [PATH ...] [--requests 3000]
    python bench/api_inprocess.py TOKENS_FILE PATH --profile 30   # where the time goes

``--warm-all`` first sends one request per token: a user's first read of
``me/recommendations/`` computes and stores their list (the recompute stores lists only
for recent readers), so without it most timed requests over thousands of users are first
reads. Run with the environment of the site to measure (``bench/loadtest.py`` does, after it has
published a model). Each request carries a token picked at random from TOKENS_FILE, as
the load test sends them. Prints one JSON line per path: median, mean and p99 in ms.
This is the server's own work per request, without gunicorn, the network or wrk.

``--profile N`` runs the requests under cProfile instead and prints, per path, the N
functions with the most time of their own, and the N with the most cumulative time
(``--clock cpu``: CPU time, which leaves out waits for Redis and the database's server;
``--profile-out FILE`` also saves the stats for ``pstats``).
"""

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokens", type=Path)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="top N functions")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this process's CPU time per request (time.process_time), which a busy "
        "machine skews less than the wall clock; Redis's own work is not in it",
    )
    parser.add_argument(
        "--warm-all",
        action="store_true",
        help="warm up with one request per token (not 100 at random): every user then has "
        "a stored list, so the timed requests are stored-list reads, not first reads",
    )
    parser.add_argument("--profile-out", type=Path, help="with --profile: save the stats here")
    options = parser.parse_args()

    from recsite.wsgi import application

    clock = time.process_time if options.clock == "cpu" else time.perf_counter
    tokens = options.tokens.read_text().split()
    rng = random.Random(1)

    def call(path: str, token: str | None = None) -> float:
        route, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": route,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token or rng.choice(tokens)}",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status = []
        started = clock()
        b"".join(application(environ, lambda s, headers: status.append(s)))
        elapsed = clock() - started
        if not status[0].startswith("200"):
            raise SystemExit(f"{path} answered {status[0]}")
        return elapsed * 1000

    for path in options.paths:
        for _ in range(100):  # warm-up: connections, caches
            call(path)
        if options.warm_all:
            for token in tokens:
                call(path, token)
        if options.profile:
            # With --clock cpu the profile counts CPU time too: on a busy machine the wall
            # clock charges whatever call was running when the process lost its core.
            profiler = cProfile.Profile(clock)
            profiler.enable()
            for _ in range(options.requests):
                call(path)
            profiler.disable()
            print(f"== {path}: {options.requests} requests", flush=True)
            if options.profile_out:
                profiler.dump_stats(options.profile_out)
            stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
            stats.sort_stats("tottime").print_stats(options.profile)
            stats.sort_stats("cumulative").print_stats(options.profile)
            continue
        times = sorted(call(path) for _ in range(options.requests))
        result = {
            "path": path,
            "requests": options.requests,
            "median_ms": round(statistics.median(times), 3),
            "mean_ms": round(statistics.mean(times), 3),
            "p99_ms": round(times[int(0.99 * len(times))], 3),
            "clock": options.clock,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
