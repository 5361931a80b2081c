"""Playwright driving Debian's Chromium against pytest-django's live_server.

Never ``playwright install``: the browser is the system's /usr/bin/chromium (CI installs
it with apt). Where it is missing, every browser test skips and says why.
"""

import os
import shutil
from io import StringIO

import pytest

CHROMIUM = os.environ.get("RECSITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(
        reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium, "
        "or set RECSITE_CHROMIUM); never `playwright install`"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per module.

    Not pytest-playwright's session-wide browser: its event loop would outlive these tests
    and trip Django in later ones. While it runs, Django is told that ORM calls beside the
    loop are safe (they are: one test thread); the variable is set for this module only,
    as ``check --deploy`` rightly rejects it anywhere else.
    """
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def live_server(django_db_setup, live_server):
    """pytest-django's server, started after the test database exists.

    Otherwise the session-scoped server starts first, sees the settings' in-memory SQLite
    name and shares the test thread's connection with its request threads (the test
    database is a file, so each thread must open its own), which crashes SQLite.
    """
    return live_server


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def eager_celery():
    """Run queued tasks inline, as a worker would, so a rating updates the model at once."""
    from recsite.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def published_model(redis_client, transactional_db, eager_celery):
    """A small demo catalogue with a recommendation model published in the test Redis."""
    from django.core.management import call_command

    from recommendations import pipeline, store

    store._client_for.cache_clear()
    pipeline.model_state_clear()
    call_command("seed_demo", "--items", "150", "--users", "120", verbosity=0, stdout=StringIO())
    run = pipeline.recompute_sync()
    assert run.version, run.error
    # Celery runs eagerly here, so each rating's update runs inside its PUT: the first one
    # in this process would load (with a cold numba cache, compile: 5.7 s measured) the
    # update's kernels while the page waits on "Saving…". A worker pays that off the
    # request path; here it is paid before the browser starts.
    assert pipeline.model_update_warm() == run.version
    yield run
    pipeline.model_state_clear()


@pytest.fixture
def sign_up(live_server):
    """Sign up through the site's form as ``username``; lands on the home page."""
    from playwright.sync_api import expect

    def sign_up(page, username, password="correct horse 42"):
        page.goto(live_server.url)
        page.get_by_role("link", name="Sign up").first.click()
        page.locator("#id_username").fill(username)
        page.locator("#id_password1").fill(password)
        page.locator("#id_password2").fill(password)
        page.locator("main").get_by_role("button", name="Sign up").click()
        expect(page.get_by_role("heading", name="Rate a few things you know")).to_be_visible()

    return sign_up
