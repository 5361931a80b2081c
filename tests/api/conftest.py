from tests.api import schemathesis_stats


def pytest_terminal_summary(terminalreporter):
    if schemathesis_stats.cases:
        terminalreporter.write_line(
            f"schemathesis: {schemathesis_stats.cases} cases run against /api/schema/"
        )
