"""Signals other apps listen to, so the catalogue never imports them.

``rating_changed`` is sent after the transaction that changed a rating commits, with
``user_id``, ``item_id`` and ``score`` (None when the rating was deleted).
``hidden_changed`` is sent after an item is marked "Not interested" or unmarked, with
``user_id``, ``item_id`` and ``hidden`` (True or False).
"""

import django.dispatch

rating_changed = django.dispatch.Signal()
hidden_changed = django.dispatch.Signal()
