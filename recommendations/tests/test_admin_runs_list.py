"""The admin is branded as the site; the recompute runs list is short and undeletable."""

import pytest
from django.urls import reverse

from recommendations.models import RecomputeRun

pytestmark = pytest.mark.django_db


def test_the_admin_is_branded_as_the_site(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Recsite administration" in html and "Django administration" not in html
    assert "<title>Catalogue, ratings and recommendations | Recsite admin</title>" in html


def test_runs_list_shows_short_columns_and_offers_no_delete(admin_client):
    error = "Traceback: " + "x" * 300
    run = RecomputeRun.objects.create(
        status="failed", error=error, shards_total=4, shards_done=1, n_ratings=31000,
        n_users=600, n_items=2000,
    )  # fmt: skip
    html = admin_client.get(reverse("admin:recommendations_recomputerun_changelist")).content
    html = html.decode()
    assert "delete_selected" not in html and "Delete selected" not in html
    assert '<progress max="4" value="1"' in html
    assert f'title="{error}">{error[:40]}…</span>' in html
    assert "css/admin-runs.css" in html
    detail = admin_client.get(
        reverse("admin:recommendations_recomputerun_change", args=[run.pk])
    ).content.decode()
    assert error in detail and "Delete" not in detail.split('id="content"')[1].split("</form>")[0]
    delete = admin_client.post(reverse("admin:recommendations_recomputerun_delete", args=[run.pk]))
    assert delete.status_code == 403
    assert RecomputeRun.objects.filter(pk=run.pk).exists()
