from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from catalog.signals import hidden_changed, rating_changed
        from recommendations import receivers

        rating_changed.connect(receivers.queue_incremental_update, dispatch_uid="rec-incremental")
        hidden_changed.connect(receivers.queue_list_refresh, dispatch_uid="rec-hidden")
        self._watch_catalogue()

    def _watch_catalogue(self) -> None:
        """An item saved or given other genres gets its content row in the live model at
        once (a task queued after commit: ``cold_start.catalogue_changed``)."""
        from django.db.models.signals import m2m_changed, post_save

        from catalog.models import Item
        from recommendations import cold_start

        receiver = cold_start.catalogue_changed
        post_save.connect(receiver, sender=Item, dispatch_uid="rec-content-item-save")
        m2m_changed.connect(
            receiver, sender=Item.genres.through, dispatch_uid="rec-content-item-genres"
        )
