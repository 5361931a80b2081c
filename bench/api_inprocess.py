"""Time API requests in-process: Django's WSGI handler called directly, no HTTP server.

    python bench/api_inprocess.py TOKENS_FILE PATH [PATH ...] [--requests 3000]
    python bench/api_inprocess.py TOKENS_FILE PATH --profile 30   # where the time goes

Run with the environment of the site to measure (``bench/loadtest.py`` does, after it has
published a model). Each request carries a token picked at random from TOKENS_FILE, as
the load test sends them. Prints one JSON line per path: median, mean and p99 in ms.
This is the server's own work per request, without gunicorn, the network or wrk.

``--profile N`` runs the requests under cProfile instead and prints, per path, the N
functions with the most time of their own, and the N with the most cumulative time.
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
    options = parser.parse_args()

    from recsite.wsgi import application

    clock = time.process_time if options.clock == "cpu" else time.perf_counter
    tokens = options.tokens.read_text().split()
    rng = random.Random(1)

    def call(path: str) -> float:
        route, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": route,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {rng.choice(tokens)}",
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
        if options.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(options.requests):
                call(path)
            profiler.disable()
            print(f"== {path}: {options.requests} requests", flush=True)
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
