from tests.api import schemathesis_stats


def pytest_terminal_summary(terminalreporter):
    if schemathesis_stats.cases:
        terminalreporter.write_line(
            f"schemathesis: {schemathesis_stats.cases} cases run against /api/schema/"
        )


# The demo catalogue with a published model (module scope), shared with the
# recommendations API tests.
from recommendations.api.tests.conftest import published_model  # noqa: E402,F401
