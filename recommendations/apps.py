from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from catalog.signals import hidden_changed, rating_changed
        from recommendations import receivers

        rating_changed.connect(receivers.queue_incremental_update, dispatch_uid="rec-incremental")
        hidden_changed.connect(receivers.queue_list_refresh, dispatch_uid="rec-hidden")
