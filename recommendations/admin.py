from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from recommendations import pipeline, reads
from recommendations.models import RecomputeRun

# The runs list fits at 1280 px beside the admin's navigation and filter sidebars (about
# 630 px for the table): trigger and counts are on each run's page, and errors are cut to
# this many characters (the full text is on the run's page and in the cell's tooltip).
ERROR_PREVIEW_CHARS = 40


@admin.register(RecomputeRun)
class RecomputeRunAdmin(admin.ModelAdmin):
    list_display = [
        "id", "status", "started_display", "duration_display", "progress_display",
        "short_error",
    ]  # fmt: skip
    list_display_links = ["id"]
    list_filter = ["status", "trigger"]
    readonly_fields = [
        "status", "trigger", "requested_by", "created", "started", "finished",
        "duration_display", "progress_display", "shards_done", "shards_total",
        "n_ratings", "n_users", "n_items", "version", "error",
    ]  # fmt: skip
    actions = ["recompute_now"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Runs are the pipeline's history; deleting one (or "Delete selected") is never
        # what staff want, and a running one is still being written by a worker.
        return False

    class Media:
        css = {"all": ["css/admin-runs.css"]}

    def get_urls(self):
        extra = [
            path(
                "recompute-now/",
                self.admin_site.admin_view(self.recompute_now_view),
                name="recommendations_recomputerun_recompute_now",
            )
        ]
        return extra + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        latest = pipeline.recompute_latest()
        extra_context["recompute_active"] = bool(latest and latest.is_active)
        extra_context["model_status"] = reads.model_status()
        return super().changelist_view(request, extra_context)

    def recompute_now_view(self, request):
        if request.method != "POST":
            return redirect(reverse("admin:recommendations_recomputerun_changelist"))
        self._start(request)
        return redirect(reverse("admin:recommendations_recomputerun_changelist"))

    def _start(self, request):
        if not request.user.has_perm("recommendations.add_recomputerun"):
            self.message_user(request, "You may not start a recompute.", messages.ERROR)
            return
        run = pipeline.recompute_start(requested_by=request.user, trigger="admin")
        self.message_user(
            request, f"Recompute #{run.pk} queued; this page shows its progress.", messages.SUCCESS
        )

    @admin.action(description="Recompute now (a new run over all ratings)")
    def recompute_now(self, request, queryset):
        self._start(request)

    @admin.display(description="started", ordering="started")
    def started_display(self, obj):
        if obj.started is None:
            return "—"
        return format_html(
            '<time datetime="{}">{}</time>', obj.started.isoformat(), f"{obj.started:%m-%d %H:%M}"
        )

    @admin.display(description="duration")
    def duration_display(self, obj):
        if obj.duration is None:
            return "—"
        return f"{obj.duration.total_seconds():.1f} s"

    @admin.display(description="progress")
    def progress_display(self, obj):
        if obj.progress is None:
            return "—"
        percent = round(obj.progress * 100)
        return format_html(
            '<progress max="{}" value="{}" aria-label="shards done">{}%</progress> {} of {}',
            obj.shards_total, obj.shards_done, percent, obj.shards_done, obj.shards_total,
        )  # fmt: skip

    @admin.display(description="error")
    def short_error(self, obj):
        if len(obj.error) <= ERROR_PREVIEW_CHARS:
            return obj.error
        return format_html(
            '<span title="{}">{}…</span>', obj.error, obj.error[:ERROR_PREVIEW_CHARS]
        )
