"""The worker image: Dockerfile lint, its build context, and its health check run for real."""

from __future__ import annotations

import fnmatch
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import (
    DOCKERFILE,
    REPO,
    dockerfile_instructions,
    healthcheck_command,
    run,
)


def _default_web_port() -> int:
    from workers.settings import Settings

    return Settings.model_fields["web_port"].default  # type: ignore[no-any-return]


def test_hadolint_passes() -> None:
    result = run("hadolint", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_pinned_slim_python_311() -> None:
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    (base,) = {args for keyword, args in instructions if keyword == "ARG" and "IMAGE=" in args}
    image = base.partition("=")[2]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image


def test_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")


def test_exposes_the_web_port_and_runs_the_worker() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["EXPOSE"] == str(_default_web_port())
    assert json.loads(instructions["ENTRYPOINT"]) == ["lineguard"]
    assert json.loads(instructions["CMD"]) == ["worker"]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _probe(port: int) -> int:
    env = {"LINEGUARD_WEB_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        healthcheck_command(), env=env, capture_output=True, timeout=30
    ).returncode


def test_healthcheck_passes_on_a_healthy_worker_and_fails_otherwise(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    server, handler = health_server
    port = server.server_address[1]
    assert _probe(port) == 0
    handler.status = 503
    assert _probe(port) != 0
    server.shutdown()
    server.server_close()
    assert _probe(port) != 0  # nothing listening


def _ignore_patterns() -> list[tuple[bool, str]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, line.lstrip("!").strip("/")))
    return rules


def _pattern_matches(pattern: str, path: str) -> bool:
    regex = ""
    for part in re.split(r"(\*\*/?)", pattern):
        if part.startswith("**"):
            regex += "(?:.*/)?" if part.endswith("/") else ".*"
        else:
            regex += fnmatch.translate(part)[4:-3].replace(".*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def _in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, pattern in _ignore_patterns():
        if any(_pattern_matches(pattern, candidate) for candidate in candidates):
            included = negate
    return included


def test_dockerignore_keeps_only_the_sources() -> None:
    assert _in_build_context("pyproject.toml")
    assert _in_build_context("workers/cli.py")
    assert _in_build_context("workers/policy/default.toml")
    assert _in_build_context("schemas/json/decision.schema.json")
    assert not _in_build_context(".git/HEAD")
    assert not _in_build_context("tests/deploy/test_dockerfile.py")
    assert not _in_build_context("workers/__pycache__/cli.cpython-311.pyc")


def test_the_build_context_builds_the_package(tmp_path: Path) -> None:
    """Copy what the Dockerfile's COPY lines take from the context, and build the wheel."""
    context = tmp_path / "src"
    copies = [
        args
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and "--from" not in args
    ]
    assert copies
    for args in copies:
        *sources, _ = args.split()
        for source in sources:
            source = source.rstrip("/")
            assert (REPO / source).exists(), f"COPY source {source} is missing"
            for path in [REPO / source, *sorted((REPO / source).rglob("*"))]:
                relative = path.relative_to(REPO).as_posix()
                if path.is_file() and _in_build_context(relative):
                    (context / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, context / relative)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("lineguard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "workers/policy/default.toml" in names
    assert "workers/cli.py" in names
    assert any(n.startswith("schemas/json/") and n.endswith(".json") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "lineguard = workers.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
