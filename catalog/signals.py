"""Signals other apps listen to, so the catalogue never imports them.

``rating_changed`` is sent after the transaction that changed a rating commits, with
``user_id``, ``item_id`` and ``score`` (None when the rating was deleted).
``hidden_changed`` is sent after an item is marked "Not interested" or unmarked, with
``user_id``, ``item_id`` and ``hidden`` (True or False).
``catalogue_changed`` is sent after a bulk write of items or their genres that sends no
model signals (an import); single saves and deletes announce themselves as usual.
"""

import django.dispatch

rating_changed = django.dispatch.Signal()
hidden_changed = django.dispatch.Signal()
catalogue_changed = django.dispatch.Signal()
