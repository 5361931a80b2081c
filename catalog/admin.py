from django.contrib import admin
from django.db import transaction
from django.db.models import Count, F, FloatField
from django.db.models.functions import Cast, NullIf

from catalog.models import Genre, HiddenItem, Item, Rating
from catalog.services import items_stats_move


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "item_count"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_item_count=Count("items"))

    @admin.display(description="items", ordering="_item_count")
    def item_count(self, obj):
        return obj._item_count


class RatingCountFilter(admin.SimpleListFilter):
    title = "number of ratings"
    parameter_name = "ratings"

    def lookups(self, request, model_admin):
        return [("0", "none"), ("1-9", "1 to 9"), ("10-99", "10 to 99"), ("100+", "100 or more")]

    def queryset(self, request, queryset):
        ranges = {"0": (0, 0), "1-9": (1, 9), "10-99": (10, 99), "100+": (100, None)}
        if self.value() not in ranges:
            return queryset
        low, high = ranges[self.value()]
        queryset = queryset.filter(rating_count__gte=low)
        return queryset if high is None else queryset.filter(rating_count__lte=high)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "year", "genre_names", "rating_count", "average", "is_active"]
    list_filter = ["is_active", "genres", RatingCountFilter]
    search_fields = ["title", "external_id"]
    filter_horizontal = ["genres"]
    readonly_fields = ["rating_count", "average", "created", "updated"]
    list_editable = ["is_active"]
    list_per_page = 50
    actions = ["deactivate", "activate"]
    fieldsets = [
        (None, {"fields": ["title", "year", "description", "genres", "is_active"]}),
        ("Ratings", {"fields": ["rating_count", "average"]}),
        ("Provenance", {"fields": ["external_id", "created", "updated"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_average=Cast(F("rating_sum"), FloatField()) / NullIf(F("rating_count"), 0))
            .prefetch_related("genres")
        )

    @admin.display(description="average", ordering="_average")
    def average(self, obj):
        value = getattr(obj, "_average", obj.rating_average)
        return "—" if value is None else f"{value:.2f}"

    @admin.display(description="genres")
    def genre_names(self, obj):
        return ", ".join(genre.name for genre in obj.genres.all())

    @admin.action(description="Hide selected items from the catalogue")
    def deactivate(self, request, queryset):
        updated = queryset.update(is_active=False)
        self.message_user(request, f"{updated} item(s) hidden.")

    @admin.action(description="Show selected items in the catalogue")
    def activate(self, request, queryset):
        updated = queryset.update(is_active=True)
        self.message_user(request, f"{updated} item(s) shown.")


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["user", "item", "score", "updated"]
    list_filter = ["score", "updated"]
    search_fields = ["user__username", "item__title"]
    raw_id_fields = ["user", "item"]
    readonly_fields = ["created", "updated"]
    list_select_related = ["user", "item"]
    date_hierarchy = "updated"
    list_per_page = 100
    # Counting a huge ratings table on every page is slow; the paginator skips it.
    show_full_result_count = False

    # The items' counts and sums move by what each edit changes (``items_stats_move``), as
    # the site's own writes move them: a recount of an item would scan the ratings table.
    # Each stored row is read locked, in the same transaction as its write.

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            changes = [] if not change else [_taken_out(_locked([obj.pk]))[0]]
            super().save_model(request, obj, form, change)
            changes.append((obj.item_id, 1, obj.score))
            items_stats_move(changes)

    def delete_model(self, request, obj):
        with transaction.atomic():
            rows = _locked([obj.pk])
            super().delete_model(request, obj)
            items_stats_move(_taken_out(rows))

    def delete_queryset(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            for at in range(0, len(pks), _ROWS):
                # What is deleted is the rows read locked, whatever matches meanwhile.
                rows = _locked(pks[at : at + _ROWS])
                Rating.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
                items_stats_move(_taken_out(rows))


_ROWS = 500  # ratings a statement: under SQLite's oldest limit on parameters (999)


def _locked(pks) -> list[tuple[int, int, float]]:
    """(id, item id, score) of the ratings ``pks`` still there, locked until the commit."""
    return list(
        Rating.objects.select_for_update().filter(pk__in=pks).values_list("pk", "item_id", "score")
    )


def _taken_out(rows) -> list[tuple[int, int, float]]:
    """``items_stats_move``'s changes that take ``rows`` out of their items' stats."""
    return [(item_id, -1, -score) for _, item_id, score in rows]


@admin.register(HiddenItem)
class HiddenItemAdmin(admin.ModelAdmin):
    list_display = ["user", "item", "created"]
    search_fields = ["user__username", "item__title"]
    raw_id_fields = ["user", "item"]
    list_select_related = ["user", "item"]
    readonly_fields = ["created"]
