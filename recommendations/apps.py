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
        """Any change to items, genres or an item's genres moves the catalogue stamp, so
        each process rebuilds its content model (``cold_start``) before its next use."""
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from catalog.models import Genre, Item
        from catalog.signals import catalogue_changed
        from recommendations import cold_start

        receiver = cold_start.catalogue_changed
        for model in (Item, Genre):
            uid = f"rec-cold-{model.__name__}"
            post_save.connect(receiver, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(receiver, sender=model, dispatch_uid=f"{uid}-delete")
        m2m_changed.connect(receiver, sender=Item.genres.through, dispatch_uid="rec-cold-genres")
        catalogue_changed.connect(receiver, dispatch_uid="rec-cold-import")
