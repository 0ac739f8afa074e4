"""The documented API and the real one agree, and every public name is documented.

``docs/api.rst`` is the list of public names (STYLE.md §3.2, rule 5): the
names it documents in the ``tserver`` module must be exactly
``tserver.__all__``, and those it documents in ``tserver.matchers`` exactly
``tserver.matchers.__all__``.  Every public class, function, method and
property carries a docstring, and the ``>>>`` examples in docstrings run.
(The examples of the documentation pages are the tests under
``tests/examples/``, included by the pages.)
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import tserver
import tserver.matchers
import tserver.pytest_plugin
import tserver.testing
from tserver import _assertions

API_RST = Path(__file__).resolve().parent.parent / "docs" / "api.rst"

# ``.. autoclass:: Name`` / ``.. class:: Name`` / ``.. module:: tserver`` ...
_DIRECTIVE = re.compile(
    r"^\.\. (?P<kind>(?:auto)?(?:class|exception|function|data|attribute|module)"
    r"|currentmodule)::\s+(?P<name>\S+)\s*$"
)


def documented_names(rst: str) -> dict[str, set[str]]:
    """Module name -> the names documented at the top level of *rst* in that module."""
    found: dict[str, set[str]] = {}
    module = ""
    for line in rst.splitlines():
        match = _DIRECTIVE.match(line)  # top level only: no indentation
        if match is None:
            continue
        kind, name = match["kind"], match["name"]
        if kind in ("module", "currentmodule", "automodule"):
            module = name
            found.setdefault(module, set())
            continue
        where, _, short = name.rpartition(".")
        found.setdefault(where or module, set()).add(short)
    return found


def test_the_parser_reads_modules_and_names() -> None:
    rst = (
        ".. module:: pkg\n\n.. autoclass:: A\n   .. automethod:: ignored\n"
        ".. data:: B\n.. currentmodule:: pkg.sub\n.. autofunction:: c\n"
        ".. autoclass:: other.D\n"
    )
    assert documented_names(rst) == {"pkg": {"A", "B"}, "pkg.sub": {"c"}, "other": {"D"}}


@pytest.fixture(scope="module")
def documented() -> dict[str, set[str]]:
    return documented_names(API_RST.read_text(encoding="utf-8"))


def test_api_rst_documents_exactly_tserver_all(documented: dict[str, set[str]]) -> None:
    exported = set(tserver.__all__)
    listed = documented.get("tserver", set())
    assert sorted(exported - listed) == [], "exported but not documented in docs/api.rst"
    assert sorted(listed - exported) == [], "documented in docs/api.rst but not exported"


def test_api_rst_documents_exactly_the_matchers(documented: dict[str, set[str]]) -> None:
    assert documented.get("tserver.matchers", set()) == set(tserver.matchers.__all__)


def test_api_rst_documents_the_fluent_assertions(documented: dict[str, set[str]]) -> None:
    assert {"RequestAssertion", "HistoryAssertion"} <= documented.get("tserver._assertions", set())


def test_api_rst_covers_the_public_modules() -> None:
    rst = API_RST.read_text(encoding="utf-8")
    for module in ("tserver.matchers", "tserver.testing", "tserver.pytest_plugin"):
        assert f".. automodule:: {module}" in rst, f"{module} is missing from docs/api.rst"


def _public_objects() -> list[tuple[str, object]]:
    """Every public class and function, and the public members of the classes."""
    owners: list[tuple[ModuleType, list[str]]] = [
        (tserver, list(tserver.__all__)),
        (tserver.matchers, list(tserver.matchers.__all__)),
        (tserver.testing, list(tserver.testing.__all__)),
        (tserver.pytest_plugin, list(tserver.pytest_plugin.__all__)),
        (_assertions, ["RequestAssertion", "HistoryAssertion"]),
    ]
    objects: list[tuple[str, object]] = []
    for module, names in owners:
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # data (UNSET, ANY, __version__) is described in api.rst
            qualified = f"{module.__name__}.{name}"
            objects.append((qualified, obj))
            if inspect.isclass(obj):
                for member, raw in vars(obj).items():
                    if member.startswith("_"):
                        continue
                    value = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
                    if inspect.isfunction(value) or isinstance(value, property):
                        objects.append((f"{qualified}.{member}", value))
    return objects


PUBLIC = _public_objects()


def test_there_are_public_objects_to_check() -> None:
    names = {name for name, _ in PUBLIC}
    assert "tserver.TestServer.wait_request" in names
    assert "tserver.matchers.request_with" in names
    assert "tserver._assertions.HistoryAssertion.contains_in_order" in names


def _has_own_docstring(obj: object) -> bool:
    if isinstance(obj, property):
        doc = obj.__doc__
    elif inspect.isclass(obj):
        doc = obj.__doc__  # not inspect.getdoc: a base class's docstring does not count
    else:
        doc = inspect.getdoc(obj)
    return bool(doc and doc.strip())


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for name, obj in PUBLIC if not _has_own_docstring(obj)]
    assert missing == [], "public names without a docstring"


def test_data_names_are_described_in_api_rst() -> None:
    rst = API_RST.read_text(encoding="utf-8")
    for name in ("UNSET", "__version__"):
        block = re.search(rf"^\.\. data:: {re.escape(name)}\n\n(   .+\n)+", rst, re.MULTILINE)
        assert block is not None, f"docs/api.rst has no described '.. data:: {name}'"


#: Modules not imported here: ``__main__`` runs the command line on import.
_NOT_IMPORTED = {"__main__"}
MODULE_NAMES = sorted(
    f"tserver.{info.name}"
    for info in pkgutil.iter_modules(tserver.__path__)
    if info.name not in _NOT_IMPORTED
)


@pytest.mark.parametrize("name", ["tserver", *MODULE_NAMES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
