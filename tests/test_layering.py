"""The import direction of STYLE.md §3.2, enforced by reading the source with `ast`.

Data flows one way: configuration down from the facade to the recorder,
records up from the handler to the assertions.  Each module may import only
modules of lower rank (`RANK`), and a few imports are singled out:

1. nothing imports ``_server`` except ``__init__``; nothing imports ``_child``
   (it is started by module name, ``python -m tserver._child``);
2. the value, wire, state and checking modules import no Tornado at all, and
   neither does ``_backend_subprocess``: a test process that uses only
   subprocess mode never loads Tornado;
3. only ``_handler`` imports ``tornado.web``; only ``_tls`` imports
   ``trustme``, and only inside a function, because it is an optional extra;
4. the integrations (``pytest_plugin``, ``testing``, ``cli``, ``__main__``)
   use the public API only, ``testing`` being allowed ``_inline``
   (the one documented exception);
5. only the checking layer imports hamcrest: never the recorder, the
   values or anything that serves;
6. no module reads a private attribute (``obj._name``) that another module
   defines: across modules, only public names (a private module's public
   functions included) are used.

What counts as an import: every ``import`` statement in the module, at module
level or inside a function (a lazy import is still a dependency).  Imports
under ``if TYPE_CHECKING:`` never run; they count for rule 2 (a value module
should not even name Tornado's types) but not for the others.

The last tests hold the boundaries that ``docs/security.rst`` promises: no
``shell=True``, unpickling only in the frame decoder of the private
socketpair, and a loopback default address.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import tserver

PACKAGE_DIR = Path(tserver.__file__).resolve().parent
MODULES = sorted(path.stem for path in PACKAGE_DIR.glob("*.py"))

#: Rows of the import graph (STYLE.md §3.2), low to high.  A module may import
#: only modules of a strictly lower rank.  Helpers that the graph does not
#: name sit just above what they need and below what uses them.
RANK: dict[str, float] = {
    # row 0, leaves
    "_errors": 0,
    "_version": 0,
    "_frozen": 0.5,
    "_waiting": 0.5,
    # row 1, values (``_request`` and ``_response`` build on ``_headers``)
    "_headers": 1,
    "_head": 1.2,
    "_body": 1.3,
    "_cookie": 1.4,
    "_events": 1.4,
    "_encoding": 1.4,
    "_violations": 1.4,
    "_records": 1.45,
    "_websocket": 1.45,
    "_request": 1.5,
    "_response": 1.5,
    "_held": 1.6,
    # rendering: stdlib only (hamcrest lazily), usable by any layer above the values
    "_formatting": 1.8,
    # row 2, wire: the command vocabulary, then its frames
    "_commands": 2,
    "_wire": 2.2,
    # row 3, state: the recorder and its books of connections and exchanges
    "_har": 2.4,
    "_traffic": 2.5,
    "_holding": 2.6,
    "_recorder": 3,
    # the backend interface, the stopped state and the waits (no Tornado)
    "_backend": 3.5,
    # row 4, loop side: the handler and its helpers, then the one Host
    "_faults": 3.9,
    "_wsserve": 3.95,
    "_h2serve": 3.97,
    "_handler": 4,
    "_listen": 4,
    "_tls": 4,
    "_host": 4.5,
    # row 5, transports
    "_backend_thread": 5,
    "_channel": 4.8,
    "_spare": 4.85,
    "_childproc": 4.9,
    "_backend_subprocess": 5,
    "_child": 5,
    # argument checks of the facade
    "_args": 5.5,
    # row 6, checking: _assertions -> matchers -> _request_matchers -> _formatting
    "_request_matchers": 6,
    "_ws_matchers": 6.1,
    "matchers": 6.2,
    "_assertions": 6.4,
    # stubs files: Response and the matchers, built from a file (load_stubs, serve --stubs)
    "_stubs": 6.5,
    # row 7, facade
    "_server": 7,
    # row 8, public surface, and inline mode (a TestServer on the caller's loop)
    "__init__": 8,
    "ws": 8,
    "_inline": 8.5,
    # row 9, integrations
    "pytest_plugin": 9,
    "testing": 9,
    "cli": 9,
    "_demo": 8.9,
    "__main__": 9.5,
}

#: Imports that break the rank order today.  Each was reported to the lead;
#: the test fails when one disappears, so that it is taken off this list.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

NO_TORNADO = (
    "_errors",
    "_websocket",
    "_events",
    "_encoding",
    "_violations",
    "_held",
    "_holding",
    "_har",
    "_records",
    "_traffic",
    "_cookie",
    "_frozen",
    "_waiting",
    "_version",
    "_headers",
    "_head",
    "_body",
    "_request",
    "_response",
    "_commands",
    "_wire",
    "_recorder",
    "_formatting",
    "_request_matchers",
    "_ws_matchers",
    "matchers",
    "_assertions",
    "_stubs",
    "_args",
    "_backend",
    "_channel",
    "_backend_subprocess",
    "_childproc",
    "_spare",
)

#: Only the checking layer uses hamcrest (and `_formatting`, lazily, to
#: describe a matcher), and the integrations, as users do; the state and
#: everything that serves do not.
HAMCREST_USERS = (
    "_formatting",
    "_request_matchers",
    "_ws_matchers",
    "matchers",
    "_assertions",
    "_stubs",
    "_demo",
    "cli",
    "pytest_plugin",
    "testing",
)

PUBLIC_MODULES = ("tserver", "tserver.matchers", "tserver.testing", "tserver.pytest_plugin")
INTEGRATIONS: dict[str, tuple[str, ...]] = {
    "pytest_plugin": (),
    "cli": ("tserver._demo",),
    "_demo": (),
    "__main__": ("tserver.cli",),
    "testing": ("tserver._inline",),
}


@dataclass(frozen=True)
class Import:
    """One imported module (and, for ``from m import n``, the name)."""

    module: str  # absolute: "tserver._request", "tornado.web"
    name: str | None  # "Request" for ``from ._request import Request``
    line: int
    top_level: bool  # at module level (not inside a function or class)
    type_only: bool  # under ``if TYPE_CHECKING:``


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.imports: list[Import] = []
        self._depth = 0
        self._type_only = 0

    def _add(self, module: str, name: str | None, node: ast.stmt) -> None:
        self.imports.append(
            Import(module, name, node.lineno, self._depth == 0, self._type_only > 0)
        )

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _nested

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, None, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = "tserver" if node.level == 1 else ""
            assert base, f"tserver.{self.module}: relative import above the package"
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        for alias in node.names:
            if source == "tserver" and (PACKAGE_DIR / f"{alias.name}.py").exists():
                self._add(f"tserver.{alias.name}", None, node)  # ``from . import matchers``
            elif source == "tornado" and alias.name != "*":
                self._add(f"tornado.{alias.name}", None, node)  # ``from tornado import web``
            else:
                self._add(source, alias.name, node)


def imports_of(module: str) -> list[Import]:
    """Every import in ``tserver/<module>.py``."""
    path = PACKAGE_DIR / f"{module}.py"
    collector = _Collector(module)
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return collector.imports


ALL_IMPORTS = {module: imports_of(module) for module in MODULES}


def _internal(module: str) -> str | None:
    """``"_request"`` for ``"tserver._request"``; None outside the package."""
    if module == "tserver":
        return "__init__"
    if module.startswith("tserver."):
        return module.split(".")[1]
    return None


def _where(module: str, imp: Import) -> str:
    return f"tserver/{module}.py:{imp.line} imports {imp.module}" + (
        f".{imp.name}" if imp.name else ""
    )


# -- the collector itself ----------------------------------------------------------


def test_the_collector_resolves_every_form(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        import os
        from typing import TYPE_CHECKING
        from tornado import web, httputil
        from . import matchers
        from . import TestServer
        from ._request import Request
        if TYPE_CHECKING:
            from tornado.web import Application
        def lazy():
            import trustme
        """
    )
    collector = _Collector("example")
    collector.visit(ast.parse(source))
    found = {(i.module, i.name, i.top_level, i.type_only) for i in collector.imports}
    assert found == {
        ("os", None, True, False),
        ("typing", "TYPE_CHECKING", True, False),
        ("tornado.web", None, True, False),
        ("tornado.httputil", None, True, False),
        ("tserver.matchers", None, True, False),
        ("tserver", "TestServer", True, False),
        ("tserver._request", "Request", True, False),
        ("tornado.web", "Application", True, True),
        ("trustme", None, False, False),
    }


# -- the rules -----------------------------------------------------------------------


def test_every_module_has_a_rank() -> None:
    unranked = sorted(set(MODULES) - set(RANK))
    assert unranked == [], "new modules: give them a row in RANK (see STYLE.md §3.2)"
    gone = sorted(set(RANK) - set(MODULES))
    assert gone == [], "RANK lists modules that no longer exist"


def test_imports_go_down_the_rows_only() -> None:
    wrong: list[str] = []
    seen_exceptions: set[tuple[str, str]] = set()
    for module, imports in ALL_IMPORTS.items():
        for imp in imports:
            target = _internal(imp.module)
            if target is None or imp.type_only or target == module:
                continue
            if RANK[target] < RANK[module]:
                continue
            if (module, target) in KNOWN_EXCEPTIONS:
                seen_exceptions.add((module, target))
                continue
            wrong.append(f"{_where(module, imp)} (rank {RANK[module]} -> {RANK[target]})")
    assert wrong == [], "imports must go to a lower row"
    stale = sorted(set(KNOWN_EXCEPTIONS) - seen_exceptions)
    assert stale == [], "fixed: remove these from KNOWN_EXCEPTIONS"


def test_only_init_imports_the_server_and_nothing_imports_the_child() -> None:
    wrong = [
        _where(module, imp)
        for module, imports in ALL_IMPORTS.items()
        for imp in imports
        if (_internal(imp.module) == "_server" and module != "__init__")
        or _internal(imp.module) == "_child"
    ]
    assert wrong == []


@pytest.mark.parametrize("module", NO_TORNADO)
def test_module_imports_no_tornado(module: str) -> None:
    wrong = [
        _where(module, imp)
        for imp in ALL_IMPORTS[module]
        if imp.module == "tornado" or imp.module.startswith("tornado.")
    ]
    assert wrong == []


def test_only_the_handler_imports_tornado_web() -> None:
    wrong = [
        _where(module, imp)
        for module, imports in ALL_IMPORTS.items()
        for imp in imports
        if module != "_handler"
        and not imp.type_only
        and (imp.module == "tornado.web" or imp.module.startswith("tornado.web."))
    ]
    assert wrong == []


def test_only_tls_imports_trustme_and_only_lazily() -> None:
    users = {
        (module, imp.top_level)
        for module, imports in ALL_IMPORTS.items()
        for imp in imports
        if imp.module == "trustme" or imp.module.startswith("trustme.")
    }
    assert users == {("_tls", False)}


@pytest.mark.parametrize("module", sorted(INTEGRATIONS))
def test_integrations_use_the_public_api_only(module: str) -> None:
    allowed_modules = set(PUBLIC_MODULES) | set(INTEGRATIONS[module])
    wrong = []
    for imp in ALL_IMPORTS[module]:
        if _internal(imp.module) is None:
            continue  # not tserver
        if imp.module not in allowed_modules:
            wrong.append(_where(module, imp))
        elif imp.module == "tserver" and imp.name not in (*tserver.__all__, None):
            wrong.append(_where(module, imp) + " (not in tserver.__all__)")
    assert wrong == []


def test_only_the_checking_layer_imports_hamcrest() -> None:
    wrong = [
        _where(module, imp)
        for module, imports in ALL_IMPORTS.items()
        for imp in imports
        if module not in HAMCREST_USERS
        and not imp.type_only
        and (imp.module == "hamcrest" or imp.module.startswith("hamcrest."))
    ]
    assert wrong == []
    assert any(imp.module.startswith("hamcrest") for imp in ALL_IMPORTS["matchers"])


def _private_reads(module: str) -> list[str]:
    """``obj._name`` reads in *module* of a ``_name`` the module does not define itself.

    ``self._x`` and ``cls._x`` are the object's own; attributes of modules
    imported from outside tserver (``os._exit``) are that library's business.
    """
    path = PACKAGE_DIR / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    outside = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and not (isinstance(node, ast.ImportFrom) and node.level)
        for alias in node.names
    }
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            defined.update(node.value.split())  # __slots__ entries
    wrong = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") or node.attr in defined:
            continue
        base = node.value
        if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in outside):
            continue
        wrong.append(f"tserver/{module}.py:{node.lineno} reads {ast.unparse(node)}")
    return wrong


@pytest.mark.parametrize("module", MODULES)
def test_no_private_attribute_is_read_across_modules(module: str) -> None:
    assert _private_reads(module) == []


def test_the_private_read_check_sees_one() -> None:
    assert _private_reads("testing") == []  # it attaches through _inline's public names
    source = "import os\nfrom . import TestServer\ndef f(srv):\n    return srv._backend, os._exit\n"
    path = PACKAGE_DIR / "_probe_for_layering_test.py"
    path.write_text(source, encoding="utf-8")
    try:
        assert _private_reads("_probe_for_layering_test") == [
            "tserver/_probe_for_layering_test.py:4 reads srv._backend"
        ]
    finally:
        path.unlink()


def test_subprocess_mode_never_loads_tornado() -> None:
    """The rules above, observed: a subprocess-mode session imports no Tornado."""
    script = textwrap.dedent(
        """
        import sys
        from urllib.request import urlopen
        from tserver import TestServer

        with TestServer(mode="subprocess") as srv:
            srv.set_response("data", b"ok")
            assert urlopen(srv.url, timeout=10).read() == b"ok"
            srv.assert_request().has_method("GET")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "tornado"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- security boundaries (docs/security.rst) ----------------------------------------


def _calls(module: str) -> list[ast.Call]:
    path = PACKAGE_DIR / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def test_no_shell_anywhere() -> None:
    wrong = [
        f"tserver/{module}.py:{call.lineno}"
        for module in MODULES
        for call in _calls(module)
        for keyword in call.keywords
        if keyword.arg == "shell"
        and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False)
    ]
    assert wrong == []


def test_no_other_way_to_run_a_string_as_code_or_a_command() -> None:
    """No os.system/os.popen/eval/exec; a subprocess gets an argument list, not a string."""
    banned = {"os.system", "os.popen", "eval", "exec", "os.execl", "os.spawnl"}
    spawners = {"subprocess.Popen", "subprocess.run", "subprocess.call", "subprocess.check_call"}
    wrong, spawned = [], []
    for module in MODULES:
        for call in _calls(module):
            name = _dotted(call.func)
            where = f"tserver/{module}.py:{call.lineno} {name}"
            if name in banned:
                wrong.append(where)
            elif name in spawners:
                spawned.append(where)
                if not (call.args and isinstance(call.args[0], ast.List)):
                    wrong.append(where + " without a literal argument list")
    assert wrong == []
    assert spawned, "the child of subprocess mode is started somewhere: the scan missed it"


def test_unpickling_happens_only_in_the_frame_decoder() -> None:
    """Pickle is read only from frames, and frames only from the private socketpair."""
    unpicklers = {"pickle.loads", "pickle.load", "pickle.Unpickler"}
    users = {
        module for module in MODULES for call in _calls(module) if _dotted(call.func) in unpicklers
    }
    # _commands round-trips an exception of its own (is it portable?)
    assert users <= {"_wire", "_commands"}
    frame_readers = {
        module
        for module, imports in ALL_IMPORTS.items()
        for imp in imports
        if imp.module == "tserver._wire" and imp.name in ("decode_frame", "FrameDecoder")
    }
    # the two ends of the socketpair of subprocess mode, and nothing that listens on TCP
    assert frame_readers == {"_child", "_channel"}


def test_the_default_address_is_loopback() -> None:
    signature = inspect.signature(tserver.TestServer)
    assert signature.parameters["address"].default == "127.0.0.1"
