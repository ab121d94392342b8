"""course_lib.paths: one place finds data/, from a checkout, an environment variable or the cwd."""

from pathlib import Path

from course_lib import paths

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_data_folder_is_found():
    assert paths.DATA_DIR == ROOT / "data"
    assert (paths.CHECKPOINT_DIR / "zoo.json").exists() and paths.ANNOTATIONS_DIR.is_dir()
    assert paths.find_data_dir(environ={}) == ROOT / "data"


def test_the_environment_variable_wins(tmp_path):
    assert paths.find_data_dir(environ={"COURSE_DATA_DIR": str(tmp_path)}) == tmp_path.resolve()


def test_an_installed_package_searches_upwards_from_the_current_folder(tmp_path, monkeypatch):
    # A non-editable install: nothing beside the package; the notebook runs in <course>/notebooks.
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "site-packages" / "course_lib" / "paths.py"))
    course = tmp_path / "course"
    (course / "data" / "checkpoints").mkdir(parents=True)
    (course / "data" / "checkpoints" / "zoo.json").write_text("{}")
    (course / "notebooks").mkdir()
    assert paths.find_data_dir(environ={}, start=course / "notebooks") == course / "data"
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()
    assert paths.find_data_dir(environ={}, start=nowhere) == tmp_path / "site-packages" / "data"


def test_no_module_builds_its_own_path_to_data():
    for path in (ROOT / "course_lib").rglob("*.py"):
        if path.name != "paths.py":
            assert '/ "data"' not in path.read_text(), f"{path}: use course_lib.paths"
