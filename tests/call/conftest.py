"""The call core's tests reuse the SIP tests' live gateway to run calls end to end."""

from tests.sip.conftest import start_gateway  # noqa: F401 - a fixture, found by name
