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
        self._watch_card_parts()

    def _watch_card_parts(self) -> None:
        """Every write that can change what an item card shows besides its live counts
        (title, year, genres, a genre's name or slug) starts a new catalogue generation
        (``receivers.catalogue_edited``): single saves and deletes by their model signals
        (the admin, the API, services), bulk writes by ``catalogue_changed`` (imports,
        ``seed_demo``)."""
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from catalog.models import Genre, Item
        from catalog.signals import catalogue_changed
        from recommendations import receivers

        edited = receivers.catalogue_edited
        for model in (Item, Genre):
            name = model.__name__.lower()
            post_save.connect(edited, sender=model, dispatch_uid=f"rec-cards-{name}-save")
            post_delete.connect(edited, sender=model, dispatch_uid=f"rec-cards-{name}-delete")
        m2m_changed.connect(edited, sender=Item.genres.through, dispatch_uid="rec-cards-genres")
        catalogue_changed.connect(edited, dispatch_uid="rec-cards-bulk")

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
