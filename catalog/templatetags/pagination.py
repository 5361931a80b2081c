from django import template

register = template.Library()


@register.filter
def page_window(page, on_each_side: int = 2):
    """The page numbers to link for ``page``: the first and last, ``on_each_side`` around
    the current one, and ``Paginator.ELLIPSIS`` for the gaps (Django's own elision)."""
    return page.paginator.get_elided_page_range(page.number, on_each_side=on_each_side, on_ends=1)
