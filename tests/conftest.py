"""Settings shared by every test module.

Hypothesis runs derandomized through one profile: the same examples on every machine and every
run (a failure reproduces from the test's name alone), no example database written to the tree,
and no per-example deadline (CI shares two cores with other work).
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "course",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("course")
