"""Helpers for the subprocess-mode tests: importable by the child process.

``tests/`` is on ``sys.path`` (pytest puts it there through the rootdir
``conftest.py``) and the child of subprocess mode gets the parent's
``sys.path``, so objects defined at module level here can be pickled by
reference and run in the child.
"""
