from django.conf import settings
from rest_framework import exceptions, pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N&page_size=M``; a malformed number is a 400 naming the parameter."""

    page_size_query_param = "page_size"

    @property
    def page_size(self):
        return settings.API_PAGE_SIZE

    @property
    def max_page_size(self):
        return settings.API_MAX_PAGE_SIZE

    def _positive_int(self, request, name: str, *, maximum: int | None = None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail("Must be a whole number from 1.", code="invalid")]}
            )
        if maximum is not None and int(raw) > maximum:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail(f"Must be at most {maximum}.", code="max_value")]}
            )
        return int(raw)

    def get_page_size(self, request):
        return (
            self._positive_int(request, self.page_size_query_param, maximum=self.max_page_size)
            or self.page_size
        )

    def get_page_number(self, request, paginator):
        return self._positive_int(request, self.page_query_param) or 1

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        number = self.get_page_number(request, paginator)
        if number > 1 and number > paginator.num_pages:
            raise exceptions.NotFound(
                f"Page {number} is past the last page ({paginator.num_pages})."
            )
        self.page = paginator.page(number)
        return list(self.page)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"]["minimum"] = 1
            if param["name"] == self.page_size_query_param:
                param["schema"]["maximum"] = self.max_page_size
        return params
