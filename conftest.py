"""Run order for `make test`: unit tests, then the notebooks under nbval, then the browser test."""


def _stage(item) -> int:
    path = str(item.fspath)
    if path.endswith(".ipynb"):
        return 1
    if item.get_closest_marker("browser") is not None:
        return 2
    return 0


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_stage)  # sort is stable: the order inside each stage is kept
