"""Stubs files: ``srv.load_stubs(path)`` and ``tserver serve --stubs FILE`` with its options.

The command-line tests drive a real ``python -m tserver serve`` with curl
(a client that is not Python) over HTTP, HTTPS and the proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from helpers.cli import Cli, run, start

from tserver import Response, TestServer

CURL = shutil.which("curl")

TOML = """\
[default]
status = 404
body = "not stubbed"

[[rules]]
method = "GET"
path = "/v1/users/1"
[rules.response]
json = {id = 1, name = "ada"}

[[rules]]
method = ["POST", "PUT"]
path_pattern = "/v1/users/\\\\d+"
query = {dry_run = "1"}
headers = {Authorization = "Bearer t"}
json = {name = "ada", tags = ["a"]}
count = 1
priority = 10
[rules.response]
status = 201
headers = {Location = "/v1/users/2"}
body = "created"

[[rules]]
path = "/events"
[rules.response]
events = ["one", {data = "two", event = "tick", id = "2"}]

[[rules]]
path = "/slow"
[rules.response]
chunks = ["a", "b"]
chunk_sleep = 0.01
sleep = 0.01

[[rules]]
path = "/broken"
[rules.response]
fault = "close"

[[rules]]
path = "/raw"
[rules.response]
fault = {raw = "HTTP/1.1 299 Odd\\r\\nContent-Length: 2\\r\\n\\r\\nok"}

[[rules]]
path = "/v"
[rules.response]
violation = "content-length-twice"
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _json_stubs(tmp_path: Path) -> Path:
    document = {
        "default": {"status": 418, "json": {"error": "teapot"}},
        "rules": [
            {"host": "api.example.test", "response": {"body": "by host"}},
            {"path": "/json", "method": "GET", "response": {"json": [1, 2]}},
        ],
    }
    return _write(tmp_path, "stubs.json", json.dumps(document))


# -- load_stubs ----------------------------------------------------------------------------


def test_load_stubs_from_toml_in_every_mode(mode: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "stubs.toml", TOML)
    with TestServer(mode=mode) as srv:
        assert srv.load_stubs(path) == [0, 1, 2, 3, 4, 5, 6]
        assert requests.get(srv.get_url("/v1/users/1"), timeout=10).json() == {
            "id": 1,
            "name": "ada",
        }
        missing = requests.get(srv.get_url("/nope"), timeout=10)
        assert (missing.status_code, missing.text) == (404, "not stubbed")

        url = srv.get_url("/v1/users/7?dry_run=1")
        auth = {"Authorization": "Bearer t"}
        body = {"name": "ada", "tags": ["a"], "extra": True}  # a superset is fine
        wrong = requests.post(url, json={"name": "bob", "tags": ["a"]}, headers=auth, timeout=10)
        assert wrong.status_code == 404  # the json subset does not hold
        created = requests.post(url, json=body, headers=auth, timeout=10)
        assert (created.status_code, created.headers["Location"]) == (201, "/v1/users/2")
        again = requests.post(url, json=body, headers=auth, timeout=10)
        assert again.status_code == 404  # count = 1: used up

        events = requests.get(srv.get_url("/events"), timeout=10).text
        assert events == "data: one\n\nevent: tick\nid: 2\ndata: two\n\n"
        assert requests.get(srv.get_url("/slow"), timeout=10).content == b"ab"
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.get_url("/broken"), timeout=10)
        raw = requests.get(srv.get_url("/raw"), timeout=10)
        assert (raw.status_code, raw.content) == (299, b"ok")
        assert srv.served(1)[0].path == "/v1/users/7"


def test_load_stubs_from_json_with_a_host_rule(mode: str, tmp_path: Path) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        srv.load_stubs(_json_stubs(tmp_path))
        via = requests.get("http://api.example.test/x", proxies={"http": srv.proxy_url}, timeout=10)
        assert via.text == "by host"
        assert requests.get(srv.get_url("/json"), timeout=10).json() == [1, 2]
        teapot = requests.get(srv.get_url("/other"), timeout=10)
        assert (teapot.status_code, teapot.json()) == (418, {"error": "teapot"})


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("a.json", "{not json", "a.json: not valid JSON"),
        ("a.toml", "rules = [", "a.toml: not valid TOML"),
        ("a.json", "[]", "expected a JSON object with 'default' and 'rules'"),
        ("a.json", '{"rulez": []}', "unknown top-level key 'rulez'"),
        ("a.json", '{"rules": {}}', "rules: expected a list of tables"),
        ("a.json", '{"rules": [{"path": "/a"}]}', "rules[0]: no response"),
        (
            "a.json",
            '{"rules": [{"pth": "/a", "response": {}}]}',
            "rules[0].pth: unknown rule field",
        ),
        (
            "a.json",
            '{"rules": [{"response": {}}, {"response": {"status": "ok"}}]}',
            "rules[1].response.status: expected an int from 100 to 599, got 'ok'",
        ),
        (
            "a.json",
            '{"rules": [{"response": {"status": 999}}]}',
            "rules[0].response: Response: status 999",
        ),
        ("a.json", '{"rules": [{"response": {"bdy": "x"}}]}', "rules[0].response.bdy: unknown"),
        (
            "a.json",
            '{"rules": [{"response": {"body": "x", "json": 1}}]}',
            "rules[0].response:",
        ),
        (
            "a.json",
            '{"rules": [{"path": "a", "response": {}}]}',
            "rules[0].path: expected an exact",
        ),
        (
            "a.json",
            '{"rules": [{"path": "/a", "path_pattern": "/b", "response": {}}]}',
            "not both",
        ),
        (
            "a.json",
            '{"rules": [{"path_pattern": "(", "response": {}}]}',
            "rules[0].path_pattern: expected a regular expression",
        ),
        ("a.json", '{"rules": [{"count": 0, "response": {}}]}', "rules[0].count: expected an int"),
        ("a.json", '{"rules": [{"method": 5, "response": {}}]}', "rules[0].method: expected"),
        (
            "a.json",
            '{"rules": [{"method": "GET POST", "response": {}}]}',
            "rules[0].method: method 'GET POST' is not an HTTP method token",
        ),
        (
            "a.json",
            '{"rules": [{"host": "http://x/", "response": {}}]}',
            "rules[0].host: host 'http://x/' must be a host name",
        ),
        ("a.json", '{"rules": [{"host": 5, "response": {}}]}', "rules[0].host: expected a host"),
        (
            "a.json",
            '{"rules": [{"query": {"a": 1}, "response": {}}]}',
            'rules[0].query: expected a table of name = "value"',
        ),
        (
            "a.json",
            '{"rules": [{"response": {"headers": "X: 1"}}]}',
            "rules[0].response.headers: expected a table",
        ),
        (
            "a.json",
            '{"rules": [{"response": {"events": [{"dta": "x"}]}}]}',
            "rules[0].response.events[0]: expected a string, or a table of data",
        ),
        ("a.json", '{"default": {"fault": "close"}}', "default.fault: the default response takes"),
        ("a.json", '{"default": []}', "default: expected a table of response fields"),
        ("a.json", '{"rules": [{"response": []}]}', "rules[0].response: expected a table of"),
        ("a.json", '{"rules": [[]]}', "rules[0]: expected a table"),
        ("a.json", '{"rules": [{"priority": "hi", "response": {}}]}', "rules[0].priority"),
        ("a.json", '{"rules": [{"response": {"events": "x"}}]}', "expected a list of events"),
        ("a.json", '{"rules": [{"response": {"chunks": [1]}}]}', "expected a list of strings"),
        ("a.json", '{"rules": [{"response": {"fault": {"raw": 1}}}]}', "a fault name, or"),
        ("a.json", '{"rules": [{"response": {"body": 5}}]}', "expected a string (sent UTF-8)"),
        (
            "a.json",
            '{"rules": [{"response": {"events": [{"retry": "soon"}]}}]}',
            "rules[0].response.events[0]:",
        ),
        ("a.json", '{"default": {"status": 42}}', "default: Response: status 42"),
    ],
)
def test_a_bad_stubs_file_names_the_file_the_place_and_what_was_expected(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    path = _write(tmp_path, name, text)
    srv = TestServer()
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.")) as failure:
        srv.load_stubs(path)
    assert words in str(failure.value)


def test_nothing_of_a_bad_file_is_added(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "half.json",
        '{"default": {"status": 500}, "rules": [{"response": {}}, {"response": {"status": 1}}]}',
    )
    with TestServer() as srv:
        with pytest.raises(ValueError, match=r"rules\[1\]"):
            srv.load_stubs(path)
        assert requests.get(srv.url, timeout=10).status_code == 200  # the default stayed
        assert srv.add_response(Response()) == 0  # no rule was added: the next id is 0


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the stubs file"):
        TestServer().load_stubs(tmp_path / "absent.toml")


# -- tserver serve --stubs and its options, with curl -----------------------------------------


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    if CURL is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    return subprocess.run(
        [CURL, "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def _stop(proc: Cli) -> list[str]:
    assert proc.stop(signal.SIGINT) == 0
    return proc.rest(proc.stdout)


def test_serve_stubs_over_http_with_verbose_lines(cli: list[Cli], tmp_path: Path) -> None:
    stubs = _write(tmp_path, "stubs.toml", TOML)
    proc = start(cli, "serve", "--stubs", str(stubs), "--verbose", "--body-bytes", "5")
    url = proc.serving_url()
    assert proc.line() == f"Stubs: {stubs} (7 rules)"
    done = _curl(f"{url}v1/users/1")
    assert json.loads(done.stdout) == {"id": 1, "name": "ada"}
    posted = _curl("-d", "0123456789", "-w", "%{http_code}", f"{url}nope")
    assert posted.stdout == "not stubbed404"
    assert proc.line() == "GET /v1/users/1 -> 200 (0 bytes received)"
    headers = [proc.line() for _ in range(3)]
    assert headers[1].startswith("  User-Agent: curl/")
    assert proc.line() == "POST /nope -> 404 (10 bytes received)"
    rest = _stop(proc)
    assert "  body: 01234 ... (10 bytes)" in rest
    assert rest[-1] == "Stopped by SIGINT after 2 requests (1 GET, 1 POST)."


def test_serve_ssl_prints_the_ca_to_trust(cli: list[Cli], tmp_path: Path) -> None:
    stubs = _write(tmp_path, "stubs.json", '{"rules": [{"response": {"body": "secure"}}]}')
    proc = start(cli, "serve", "--stubs", str(stubs), "--ssl", "--client-cert", "optional")
    url = proc.serving_url()
    assert url.startswith("https://")
    ca = proc.line().removeprefix("CA certificate (trust it): ")
    client = proc.line().removeprefix("Client certificate and key: ")
    assert Path(ca).is_file()
    assert _curl("--cacert", ca, url).stdout == "secure"
    assert _curl("--cacert", ca, "--cert", client, url).stdout == "secure"
    assert _stop(proc)[-1].startswith("Stopped by SIGINT after 2 requests")
    assert not Path(ca).exists()  # removed at exit


def test_serve_proxy_answers_any_host_by_the_stubs(cli: list[Cli], tmp_path: Path) -> None:
    stubs = _json_stubs(tmp_path)
    proc = start(cli, "serve", "--stubs", str(stubs), "--proxy", "--proxy-auth", "u:p")
    proc.serving_url()
    ca = proc.line().removeprefix("CA certificate (trust it): ")
    proxy = proc.line().removeprefix("Proxy: ")
    assert proc.line() == f"Stubs: {stubs} (2 rules)"
    for scheme in ("http", "https"):
        done = _curl(
            "-x", proxy, "--proxy-user", "u:p", "--cacert", ca, f"{scheme}://api.example.test/"
        )
        assert done.stdout == "by host", done.stderr
    refused = _curl(
        "-x", proxy, "-w", "%{http_code}", "-o", "/dev/null", "http://api.example.test/"
    )
    assert refused.stdout == "407"
    lines = [proc.line() for _ in range(3)]
    assert lines[0] == "GET / -> 200 (0 bytes received)"
    assert lines[2] == "GET / -> 407 (0 bytes received)"
    _stop(proc)


def test_serve_json_and_log_file(cli: list[Cli], tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = start(cli, "serve", "--log", str(log), "--status", "202")
    url = proc.serving_url()
    assert _curl("-d", "hello", f"{url}in").returncode == 0
    assert proc.line() == "POST /in -> 202 (5 bytes received)"  # the console stays short
    _stop(proc)
    [record] = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert (record["path"], record["status"], record["body"], record["connection"]) == (
        "/in",
        202,
        "aGVsbG8=",
        0,
    )


def test_serve_admin_lists_and_resets(cli: list[Cli], tmp_path: Path) -> None:
    stubs = _write(tmp_path, "stubs.toml", TOML)
    proc = start(cli, "serve", "--stubs", str(stubs), "--admin")
    url = proc.serving_url()
    proc.line()  # Stubs: ...
    assert proc.line().startswith(f"Admin: GET {url}__tserver/requests")
    _curl(f"{url}v1/users/1?x=1")
    listed = json.loads(_curl(f"{url}__tserver/requests").stdout)
    assert [(r["method"], r["path"], r["query_string"], r["status"]) for r in listed] == [
        ("GET", "/v1/users/1", "x=1", 200)
    ]
    assert json.loads(_curl("-X", "POST", f"{url}__tserver/reset").stdout) == {
        "reset": True,
        "rules": 7,
    }
    assert json.loads(_curl(f"{url}__tserver/requests").stdout) == []
    assert json.loads(_curl(f"{url}v1/users/1").stdout)["id"] == 1  # the stubs came back
    assert proc.line() == "GET /v1/users/1?x=1 -> 200 (0 bytes received)"
    assert proc.line() == "GET /v1/users/1 -> 200 (0 bytes received)"  # admin calls: not shown
    assert _stop(proc)[-1] == "Stopped by SIGINT after 2 requests (2 GET)."


def test_serve_watch_reloads_a_changed_file_and_keeps_the_old_on_error(
    cli: list[Cli], tmp_path: Path
) -> None:
    stubs = _write(tmp_path, "stubs.json", '{"rules": [{"response": {"body": "first"}}]}')
    proc = start(cli, "serve", "--stubs", str(stubs), "--watch")
    url = proc.serving_url()
    assert proc.line() == f"Stubs: {stubs} (1 rule, watching it)"
    assert _curl(url).stdout == "first"
    assert proc.line() == "GET / -> 200 (0 bytes received)"
    stubs.write_text('{"rules": [{"response": {"body": "second, longer"}}]}', encoding="utf-8")
    assert proc.line() == f"Reloaded {stubs}: 1 rule (the history starts afresh)"
    assert _curl(url).stdout == "second, longer"
    assert proc.line() == "GET / -> 200 (0 bytes received)"
    stubs.write_text('{"rules": [{"response": {"status": "x"}}]}', encoding="utf-8")
    assert proc.line().startswith("tserver: --watch: not reloaded, the old rules stay: ")
    assert _curl(url).stdout == "second, longer"
    _stop(proc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watch"], "tserver: --watch needs --stubs FILE"),
        (["--proxy-auth", "u:p"], "tserver: --proxy-auth needs --proxy"),
        (["--client-cert", "optional"], "tserver: --client-cert needs --ssl or --proxy"),
        (["--proxy", "--proxy-auth", "nocolon"], "invalid credentials 'nocolon'"),
        (["--stubs", "/nonexistent/stubs.toml"], "cannot read the stubs file"),
    ],
)
def test_serve_refuses_bad_options_and_files_before_serving(args: list[str], message: str) -> None:
    result = run("serve", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Serving on" not in result.stdout


def test_serve_refuses_a_bad_stubs_file_naming_the_rule(tmp_path: Path) -> None:
    stubs = _write(tmp_path, "bad.toml", '[[rules]]\n[rules.response]\nstatus = "ok"\n')
    result = run("serve", "--stubs", str(stubs))
    assert result.returncode == 2
    assert result.stderr == (
        f"tserver: error: {stubs}: rules[0].response.status: expected an int from 100 "
        "to 599, got 'ok'\n"
    )


def test_headers_as_a_list_of_pairs(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "pairs.json",
        '{"rules": [{"response": {"headers": [["X-A", "1"], ["X-A", "2"]], "body": "x"}}]}',
    )
    with TestServer() as srv:
        srv.load_stubs(path)
        assert requests.get(srv.url, timeout=10).headers["X-A"] == "1, 2"
