"""Tests for course_lib.nms (a package, so that test_fast.py and the like cannot clash with
test modules of the same name in other folders of tests/)."""
