"""Loaded into a bench worker (``celery worker -I task_timer``, bench/ on PYTHONPATH): one
JSON line per task, to the file named by SHARD_TIMER_OUT, with the task's arguments, its
wall seconds and the CPU seconds of the pool process meanwhile (all its threads)."""

import json
import os
import time

from celery.signals import task_postrun, task_prerun

_started = {}


@task_prerun.connect
def _pre(task_id=None, **kwargs):
    _started[task_id] = (time.perf_counter(), time.process_time())


@task_postrun.connect
def _post(task_id=None, task=None, args=None, state=None, **kwargs):
    if task_id not in _started:
        return
    wall, cpu = _started.pop(task_id)
    line = {
        "task": task.name.rsplit(".", 1)[-1],
        "args": list(args or []),
        "state": state,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "end": time.time(),
    }
    with open(os.environ["SHARD_TIMER_OUT"], "a") as out:
        out.write(json.dumps(line) + "\n")
