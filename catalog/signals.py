"""Signals other apps listen to, so the catalogue never imports them.

``rating_changed`` is sent after the transaction that changed a rating commits, with
``user_id``, ``item_id`` and ``score`` (None when the rating was deleted).
"""

import django.dispatch

rating_changed = django.dispatch.Signal()
