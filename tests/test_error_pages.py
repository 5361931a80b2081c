"""The site's own 404 and 500 pages, and the favicon."""

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_the_sites_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html
    assert 'class="site-header"' in html and "/no/such/page/" in html
    assert client.get("/items/999999/").status_code == 404


def test_api_404s_stay_json(client):
    response = client.get("/api/v1/items/999999/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_the_500_page_needs_no_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        html = render_to_string("500.html")
    assert "<h1>Something went wrong</h1>" in html
    assert "site.css" in html


def _get_with_the_database_down(client, path):
    client.raise_request_exception = False
    with connection.execute_wrapper(_fail_every_query):
        return client.get(path)


@override_settings(DEBUG=False)
def test_a_crash_with_the_database_down_renders_the_sites_500(client):
    response = _get_with_the_database_down(client, "/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def _fail_every_query(execute, sql, params, many, context):
    raise RuntimeError("the database is down")


def test_favicon_ico_leads_to_the_svg_and_pages_link_it(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/static/img/favicon.svg")
    assert client.get(response["Location"]).status_code == 200
    assert 'rel="icon" href="/static/img/favicon.svg"' in client.get("/").content.decode()


def test_an_unknown_path_under_api_answers_json(client):
    response = client.get("/api/nope/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["status"] == 404


@override_settings(DEBUG=False)
def test_an_api_crash_answers_json_500(client):
    response = _get_with_the_database_down(client, "/api/v1/items/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
