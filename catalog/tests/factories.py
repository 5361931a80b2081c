import factory
from django.contrib.auth import get_user_model

from catalog.models import Genre, Item, Rating


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("a-long-pass-phrase")


class GenreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Genre
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Genre {n}")
    slug = factory.LazyAttribute(lambda g: g.name.lower().replace(" ", "-"))


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Item {n}")
    year = 2000

    @factory.post_generation
    def genres(self, create, extracted, **kwargs):
        if create and extracted:
            self.genres.set(extracted)


class RatingFactory(factory.django.DjangoModelFactory):
    """A raw rating row; tests of derived stats go through catalog.services instead."""

    class Meta:
        model = Rating

    user = factory.SubFactory(UserFactory)
    item = factory.SubFactory(ItemFactory)
    score = 4.0
