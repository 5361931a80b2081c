from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from catalog import search_index

        post_migrate.connect(
            search_index.install_after_migrate, sender=self, dispatch_uid="catalog-search-index"
        )
