"""The project-wide hypothesis profile (tests/conftest.py) is the one in force."""

from hypothesis import given, settings
from hypothesis import strategies as st

DRAWN: list[int] = []


def test_profile_is_derandomized_without_a_database():
    assert settings.default.derandomize is True
    assert settings.default.database is None
    assert settings.default.deadline is None


@settings(max_examples=5)
@given(st.integers(0, 10**9))
def test_draws_are_the_same_on_every_run(value):
    # The first example of a derandomized run is fixed, so a failure reproduces anywhere.
    DRAWN.append(value)


def test_the_drawn_examples_repeat():
    first = list(DRAWN)
    DRAWN.clear()
    test_draws_are_the_same_on_every_run()
    assert first and DRAWN == first
