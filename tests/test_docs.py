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

import ast
import doctest
import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import tserver
import tserver.matchers
import tserver.pytest_plugin
import tserver.testing
from tserver import _assertions
from tserver import ws as tserver_ws
from tserver.compat import test_server as compat_0_1
from tserver.compat import test_server_2017 as compat_2017

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
        (_assertions, ["RequestAssertion", "HistoryAssertion", "WebSocketAssertion"]),
        (tserver_ws, list(tserver_ws.__all__)),
        (compat_0_1, list(compat_0_1.__all__)),
        (compat_2017, list(compat_2017.__all__)),
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


DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def shared_imports(module: ModuleType) -> dict[str, object]:
    """The names the imports of *module*'s own docstring examples bind.

    They are in scope in every example of the module, as its docstring says
    (``tserver.matchers``: ``from hamcrest import *``...), so that each
    example of a matcher is a few lines about that matcher.
    """
    names: dict[str, object] = {}
    for example in doctest.DocTestParser().get_examples(module.__doc__ or ""):
        if example.source.startswith(("from ", "import ")):
            exec(example.source, names)
    names.pop("__builtins__", None)
    return names


def test_shared_imports_are_the_import_lines_of_the_module_docstring() -> None:
    names = shared_imports(tserver.matchers)
    assert names["Request"] is tserver.Request
    assert names["has_method"] is tserver.matchers.has_method
    assert "assert_that" in names
    assert shared_imports(tserver.pytest_plugin) == {}


@pytest.mark.parametrize("name", ["tserver", *MODULE_NAMES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, extraglobs=shared_imports(module), optionflags=DOCTEST_FLAGS, verbose=False
    )
    assert result.failed == 0


# -- every example of a docstring is a doctest ------------------------------
#
# The API reference renders docstrings, so their examples follow the rule of
# the pages: a test runs them, and for a docstring that test is doctest.  So
# a literal block (``::``) that is an example (its paragraph starts with
# "Example") or that is Python code starts with ``>>>``; a docstring holds no
# Python ``code-block`` and no ``+SKIP``; and doctest finds every ``>>>`` of
# a module's docstrings (none is left out because the finder does not reach
# its object).  Shell commands go in a ``.. code-block:: console``.

PACKAGE = Path(tserver.__file__).resolve().parent


def docstrings(source: str) -> list[tuple[str, str]]:
    """``(qualified name, cleaned docstring)`` of a module's source, module first."""
    tree = ast.parse(source)
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child)
                if doc:
                    found.append((name, doc))
                visit(child, f"{name}.")

    doc = ast.get_docstring(tree)
    if doc:
        found.append(("<module>", doc))
    visit(tree, "")
    return found


def _paragraph_start(lines: list[str], index: int) -> str:
    """The first line of the paragraph that holds line *index*."""
    while index > 0 and lines[index - 1].strip():
        index -= 1
    return lines[index].strip()


_STATEMENTS = (ast.Call, ast.Import, ast.ImportFrom, ast.Assign, ast.With, ast.For, ast.ClassDef)


def _is_code(text: str) -> bool:
    """Whether *text* is Python that does something (not a word, a literal or a comment)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, _STATEMENTS) for node in ast.walk(tree))


def docstring_problems(doc: str) -> list[str]:
    """Why the examples of *doc* are not doctests: one line per bad block."""
    lines = doc.splitlines()
    problems = []
    for block in literal_blocks(doc):
        if block.kind == "doctest" or block.text.startswith(">>>"):
            continue
        if block.kind == "code-block" and block.language not in PYTHON_LANGUAGES:
            continue  # console, text...: not Python
        if block.kind == "literal":
            is_example = _paragraph_start(lines, block.line - 1).startswith("Example")
            if not is_example and not _is_code(block.text):
                continue  # a message or an output, shown as text
        problems.append(f"line {block.line}: {block!r} is not a >>> example")
    if "+SKIP" in doc:
        problems.append("an example marked +SKIP is not run")
    return problems


def test_the_docstring_rule_refuses_what_it_says() -> None:
    assert docstring_problems("Text.\n\nExample::\n\n    >>> 1 + 1\n    2\n") == []
    assert docstring_problems("Example::\n\n    f(x)\n") != []
    assert docstring_problems("Example (a server and\na client)::\n\n    srv\n") != []
    assert docstring_problems("As in::\n\n    with a() as b:\n        c(b)\n") != []
    assert docstring_problems("Prints::\n\n    request #2 of 3 did not match\n") == []
    assert docstring_problems("Returns::\n\n    b'{\"id\": 12}'\n") == []
    assert docstring_problems(".. code-block:: console\n\n    $ tserver demo\n") == []
    assert docstring_problems(".. code-block:: python\n\n    x = 1\n") != []
    assert docstring_problems(">>> f()  # doctest: +SKIP\n") != []
    source = '"""M."""\nclass A:\n    def f(self):\n        """F."""\n'
    assert [name for name, _ in docstrings(source)] == ["<module>", "A.f"]


SOURCES = sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_every_docstring_example_is_a_doctest(path: Path) -> None:
    problems = [
        f"{path.name}: {name}: {problem}"
        for name, doc in docstrings(path.read_text(encoding="utf-8"))
        for problem in docstring_problems(doc)
    ]
    assert problems == []


@pytest.mark.parametrize("name", ["tserver", *MODULE_NAMES])
def test_doctest_finds_every_docstring_example(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    written = sum(
        line.lstrip().startswith(">>>")
        for _, doc in docstrings(Path(module.__file__).read_text(encoding="utf-8"))
        for line in doc.splitlines()
    )
    found = sum(len(test.examples) for test in doctest.DocTestFinder().find(module))
    assert found == written, f"{name}: doctest runs {found} of the {written} >>> examples"


def test_the_modules_doctest_does_not_import_have_no_examples() -> None:
    for name in _NOT_IMPORTED:
        source = (PACKAGE / f"{name}.py").read_text(encoding="utf-8")
        assert ">>>" not in source, f"tserver.{name} is not imported: its examples would not run"


# -- every Python example of the pages is run by a test ------------------------
#
# The rule, for every page ``docs/*.rst``:
#
# 1. Python on a page comes from a ``literalinclude`` of a file under
#    ``tests/examples/`` that pytest runs: a ``test_*.py`` file, or a script
#    that a ``test_*.py`` file of that folder names and runs.  So no page
#    holds a block of Python of its own: no ``code-block`` (``code``,
#    ``sourcecode``) in a Python language (``python``, ``python3``, ``py``,
#    ``py3``, ``pycon``, ``ipython``, ``default``, or none given), no ``::``
#    literal block (Sphinx highlights those in ``highlight_language``, which
#    is Python), no ``>>>`` doctest block.
# 2. A block declared in another language (``text``, ``none``, ``console``,
#    ``sh``...) is not Python in disguise: if its text compiles as Python it
#    is refused, unless `ALLOWED_BLOCKS` lists it with the reason.
# 3. A failure message is included from the test that compares it with the
#    real one: a block with a line that starts with ``Expected:``, ``but:``
#    or an exception name and a colon (``AssertionError:``) must be a
#    ``literalinclude`` too.
#
# The README is not a Sphinx page (PyPI renders it): its Python blocks are
# run here as they are written.

DOCS = API_RST.parent
ROOT = DOCS.parent
EXAMPLES = ROOT / "tests" / "examples"
PAGES = sorted(DOCS.glob("*.rst"))

PYTHON_LANGUAGES = {"", "default", "python", "python3", "py", "py3", "pycon", "ipython"}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode"}

#: Blocks that compile as Python but are not examples: (page, first line of
#: the block) -> why it is shown as text.  Keep this list short.
ALLOWED_BLOCKS: dict[tuple[str, str], str] = {
    (
        "responses.rst",
        'Response(data=b"", status=200, headers=None, cookies=None, json=UNSET,',
    ): "the signature of Response with its defaults, not a call to run",
}

_DIRECTIVE_LINE = re.compile(r"^(?P<indent>\s*)\.\.\s+(?P<name>[\w:-]+)::(?:\s+(?P<arg>.*))?$")
_OPTION_LINE = re.compile(r"^\s*:(?P<name>[\w-]+):(?:\s+(?P<value>.*))?$")
_FAILURE_LINE = re.compile(r"^\s*(?:Expected:|but:|\w*(?:Error|Exception):)")


class Block:
    """A literal block of a page: where it is, what it says, how it got there."""

    def __init__(
        self, line: int, kind: str, language: str, text: str, options: dict[str, str]
    ) -> None:
        self.line = line  # 1-based line of the directive, or of the paragraph's "::"
        self.kind = kind  # "code-block", "literalinclude", "literal" (::) or "doctest"
        self.language = language  # the directive's argument (a path for literalinclude)
        self.text = text
        self.options = options

    def __repr__(self) -> str:
        return f"<{self.kind} {self.language!r} at line {self.line}: {self.text[:40]!r}>"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the lines, from *start*, that are blank or indented past *indent*."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    return end


def _text(lines: list[str]) -> str:
    return textwrap.dedent("\n".join(lines)).strip("\n")


def literal_blocks(rst: str) -> list[Block]:
    """Every literal block of *rst*, including those nested in other directives."""
    lines = rst.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE_LINE.match(line)
        if directive:
            indent = len(directive["indent"])
            options: dict[str, str] = {}
            j = i + 1
            while j < len(lines) and _indent(lines[j]) > indent:
                option = _OPTION_LINE.match(lines[j])
                if option is None:
                    break
                options[option["name"]] = (option["value"] or "").strip()
                j += 1
            name, argument = directive["name"], (directive["arg"] or "").strip()
            if name in CODE_DIRECTIVES or name in ("literalinclude", "doctest", "testcode"):
                end = _body_end(lines, j, indent)
                kind = "code-block" if name in CODE_DIRECTIVES else name
                language = "python" if name in ("doctest", "testcode") else argument.lower()
                blocks.append(Block(i + 1, kind, language, _text(lines[j:end]), options))
                i = end
            else:  # a note, a table...: look for blocks in its content
                i = j
            continue
        stripped = line.strip()
        if stripped.startswith(".."):  # a comment, a target or a substitution
            i += 1
        elif stripped.endswith("::"):
            start = i + 1
            while start < len(lines) and not lines[start].strip():
                start += 1
            if start < len(lines) and _indent(lines[start]) > _indent(line):
                end = _body_end(lines, start, _indent(line))
                blocks.append(Block(i + 1, "literal", "", _text(lines[start:end]), {}))
                i = end
            else:
                i += 1
        elif stripped.startswith(">>>") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            blocks.append(Block(i + 1, "doctest", "pycon", _text(lines[i:end]), {}))
            i = end
        else:
            i += 1
    return blocks


def test_the_block_finder_finds_every_kind() -> None:
    rst = (
        "Text::\n\n    x = 1\n\nMore.\n\n"
        ".. note::\n\n   Nested::\n\n       y = 2\n\n"
        ".. code-block:: python\n   :caption: c\n\n   z = 3\n   w = 4\n\n"
        ".. code-block:: console\n\n   $ pip install tserver\n\n"
        ".. literalinclude:: ../tests/examples/test_a.py\n   :pyobject: test_a\n\n"
        ".. list-table::\n   :header-rows: 1\n\n   * - a\n\n"
        ">>> 1 + 1\n2\n\n"
        ".. a comment::\n"
    )
    found = [(b.line, b.kind, b.language, b.text, b.options) for b in literal_blocks(rst)]
    assert found == [
        (1, "literal", "", "x = 1", {}),
        (9, "literal", "", "y = 2", {}),
        (13, "code-block", "python", "z = 3\nw = 4", {"caption": "c"}),
        (19, "code-block", "console", "$ pip install tserver", {}),
        (23, "literalinclude", "../tests/examples/test_a.py", "", {"pyobject": "test_a"}),
        (31, "doctest", "pycon", ">>> 1 + 1\n2", {}),
    ]


def _compiles(text: str) -> bool:
    try:
        compile(text, "<block>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _problem(page: str, block: Block) -> str | None:
    """Why *block* breaks the rule above, or None."""
    if block.kind == "literalinclude":
        return None
    if block.kind in ("literal", "doctest") or block.language in PYTHON_LANGUAGES:
        return "Python that no test runs: make it a literalinclude of tests/examples/"
    first_line = block.text.splitlines()[0] if block.text else ""
    if any(_FAILURE_LINE.match(line) for line in block.text.splitlines()):
        return "a failure message: include it from the test that compares it with the real one"
    if _compiles(block.text) and (page, first_line) not in ALLOWED_BLOCKS:
        return f"{block.language!r} block that compiles as Python: include it, or allow it"
    return None


def test_the_rule_refuses_what_it_says() -> None:
    def problems(rst: str) -> list[str | None]:
        return [_problem("page.rst", block) for block in literal_blocks(rst)]

    assert problems(".. code-block:: python\n\n   x = 1\n") == [
        "Python that no test runs: make it a literalinclude of tests/examples/"
    ]
    assert problems(".. code-block::\n\n   x = 1\n") == problems("Text::\n\n   x = 1\n")
    assert problems(".. code-block:: text\n\n   f(x)\n")[0] is not None
    assert problems(".. code-block:: none\n\n   AssertionError: no\n")[0] is not None
    assert problems(".. code-block:: console\n\n   $ tserver --help\n") == [None]
    assert problems(".. literalinclude:: ../tests/examples/test_x.py\n") == [None]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_python_example_on_the_page_is_run_by_a_test(page: Path) -> None:
    blocks = literal_blocks(page.read_text(encoding="utf-8"))
    problems = [
        f"{page.name}:{block.line}: {problem}"
        for block in blocks
        if (problem := _problem(page.name, block)) is not None
    ]
    assert problems == []


def _run_by_pytest(path: Path) -> bool:
    """Whether pytest runs *path*: a test file, or a script a test file runs."""
    if path.name.startswith("test_"):
        return True
    return any(path.name in test.read_text(encoding="utf-8") for test in EXAMPLES.glob("test_*.py"))


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_included_examples_are_tests_under_tests_examples(page: Path) -> None:
    for block in literal_blocks(page.read_text(encoding="utf-8")):
        if block.kind != "literalinclude":
            continue
        path = (page.parent / block.language).resolve()
        assert path.parent == EXAMPLES, f"{page.name}:{block.line}: {path} is not in tests/examples"
        assert path.is_file(), f"{page.name}:{block.line}: {path} does not exist"
        assert _run_by_pytest(path), f"{page.name}:{block.line}: no test runs {path.name}"


def test_allowed_blocks_are_still_on_their_pages() -> None:
    for page, first_line in ALLOWED_BLOCKS:
        texts = [block.text for block in literal_blocks((DOCS / page).read_text(encoding="utf-8"))]
        found = [text for text in texts if text.startswith(first_line)]
        assert found, f"{page}: no block starts with {first_line!r}: remove it from the list"
        assert _compiles(found[0]), f"{page}: {first_line!r} is not Python: no need to allow it"


def test_the_python_examples_of_the_readme_run() -> None:
    blocks = literal_blocks((ROOT / "README.rst").read_text(encoding="utf-8"))
    python = [block for block in blocks if block.language in PYTHON_LANGUAGES]
    assert python, "README.rst has no Python example"
    for block in python:
        exec(compile(block.text, f"README.rst:{block.line}", "exec"), {})
