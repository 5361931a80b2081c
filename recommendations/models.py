from django.conf import settings
from django.db import models
from django.utils import timezone


class RecomputeRunQuerySet(models.QuerySet):
    def transition(self, pk: int, to: str, **fields) -> bool:
        """Move run ``pk`` to status ``to`` (and set ``fields``) if its status may precede
        ``to``, in one conditional UPDATE; True when this call made the move.

        Two processes racing for the same run (a shard failing while the last one
        publishes, a new run declaring this one lost) cannot both win.
        """
        sources = RecomputeRun.TRANSITIONS[to]
        return self.filter(pk=pk, status__in=sources).update(status=to, **fields) == 1


class RecomputeRun(models.Model):
    """One full recompute of the neighbour model: its progress, its counts, its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"  # another recompute held the lock

    # Each status and the statuses a run may reach it from: queued -> running ->
    # succeeded / failed, or queued -> skipped / failed. Nothing leaves a final status.
    TRANSITIONS = {
        Status.RUNNING: (Status.QUEUED,),
        Status.SKIPPED: (Status.QUEUED,),
        Status.SUCCEEDED: (Status.RUNNING,),
        Status.FAILED: (Status.QUEUED, Status.RUNNING),
    }

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    trigger = models.CharField(max_length=32, default="manual")  # manual, schedule, admin, api
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    shards_total = models.PositiveIntegerField(default=0)
    shards_done = models.PositiveIntegerField(default=0)
    n_ratings = models.PositiveIntegerField(null=True, blank=True)
    n_users = models.PositiveIntegerField(null=True, blank=True)
    n_items = models.PositiveIntegerField(null=True, blank=True)
    version = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    objects = RecomputeRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status", "-created"], name="recompute_status_idx")]

    def __str__(self) -> str:
        return f"Recompute #{self.pk} ({self.status})"

    @property
    def duration(self):
        if self.started is None:
            return None
        return (self.finished or timezone.now()) - self.started

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def progress(self) -> float | None:
        if not self.shards_total:
            return None
        return self.shards_done / self.shards_total
