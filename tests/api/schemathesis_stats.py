"""How many schemathesis cases ran in this pytest session (summary line in conftest)."""

cases = 0
