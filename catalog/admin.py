from django.contrib import admin
from django.db.models import Count, F, FloatField
from django.db.models.functions import Cast, NullIf

from catalog.models import Genre, HiddenItem, Item, Rating
from catalog.services import item_stats_refresh


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

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        item_ids = {obj.item_id, *([form.initial.get("item")] if change else [])}
        item_stats_refresh(item_ids=[pk for pk in item_ids if pk])

    def delete_model(self, request, obj):
        item_id = obj.item_id
        super().delete_model(request, obj)
        item_stats_refresh(item_ids=[item_id])

    def delete_queryset(self, request, queryset):
        item_ids = list(queryset.values_list("item_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        item_stats_refresh(item_ids=item_ids)


@admin.register(HiddenItem)
class HiddenItemAdmin(admin.ModelAdmin):
    list_display = ["user", "item", "created"]
    search_fields = ["user__username", "item__title"]
    raw_id_fields = ["user", "item"]
    list_select_related = ["user", "item"]
    readonly_fields = ["created"]
