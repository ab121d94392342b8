"""Tests for course_lib.plotting (a package, so that test_boxes.py and the like cannot clash with
test modules of the same name in other folders of tests/)."""
