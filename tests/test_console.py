"""The analyst console's files: served by the node at /console/, with nothing from outside."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.console.routes import POLICY
from tests.conftest import make_node

# XML namespace names are identifiers, never fetched; the SVG one is needed to make SVG.
NAMESPACES = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`)<>]*", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    node = make_node(tmp_path_factory.mktemp("console") / "node", "sqlite", exploit=False)
    with TestClient(create_app(node)) as test_client:
        yield test_client
    node.close()


def static_files() -> list[str]:
    """Every file of the console, as a path under /console/."""
    root = resources.files("bices.console").joinpath("static")
    found: list[str] = []

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                found.append(f"{prefix}{entry.name}")

    walk(root, "")
    return sorted(found)


def test_root_redirects_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/console/"
    assert client.head("/", follow_redirects=False).status_code == 307


def test_index_is_served_with_a_policy_that_allows_only_this_node(client: TestClient) -> None:
    answer = client.get("/console/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == POLICY
    assert "default-src 'self'" in POLICY and "connect-src 'self'" in POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="js/app.js">' in answer.text
    assert 'class="skip-link"' in answer.text


def test_every_asset_is_served_and_names_no_external_url(client: TestClient) -> None:
    files = static_files()
    assert {"index.html", "js/app.js", "js/stream.js", "css/console.css", "data/world.json"} <= set(
        files
    )
    assert len([f for f in files if f.startswith("js/pages/")]) >= 12
    for name in files:
        answer = client.get(f"/console/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-security-policy"] == POLICY
        text = answer.text
        urls = set(URL.findall(text)) - NAMESPACES
        assert not urls, f"{name} names external URLs: {sorted(urls)[:5]}"
        assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?//""", text), (
            f"{name}: protocol-relative URL"
        )
        assert "@import" not in text, name
        if name.endswith(".js"):
            for target in re.findall(r"""(?:from|import)\s*\(?\s*["']([^"']+)["']""", text):
                assert target.startswith(("./", "../")), f"{name} imports {target!r}"
            assert ".innerHTML" not in text, (
                f"{name}: text from the API must never be parsed as HTML"
            )


def test_javascript_is_served_as_javascript(client: TestClient) -> None:
    answer = client.get("/console/js/app.js")
    assert answer.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }
    assert client.get("/console/css/console.css").headers["content-type"].startswith("text/css")


def test_large_files_are_compressed(client: TestClient) -> None:
    answer = client.get("/console/data/world.json", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    world = answer.json()
    names = {country["name"] for country in world["countries"]}
    assert {"South Korea", "North Korea", "Estonia", "United States of America"} <= names
    assert "Natural Earth" in world["source"]
    assert all(re.fullmatch(r"[MZ0-9.,\- ]+", c["d"]) for c in world["countries"])


def test_a_missing_file_answers_404(client: TestClient) -> None:
    assert client.get("/console/js/nothing.js").status_code == 404
    assert client.get("/console/../pyproject.toml").status_code == 404


def test_the_console_adds_no_api(client: TestClient) -> None:
    """The console reads the same API as every client: it adds no route to the schema."""
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if "console" in p]
    assert "/" not in paths


def test_the_packaged_files_match_the_source_tree() -> None:
    """Package data covers every asset (pyproject's package-data globs)."""
    source = Path(__file__).parent.parent / "src" / "bices" / "console" / "static"
    on_disk = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert on_disk == static_files()
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text("utf-8")
    for pattern in ("*.html", "js/*.js", "js/pages/*.js", "css/*.css", "data/*.json"):
        assert f'"console/static/{pattern}"' in pyproject, pattern
    json.loads((source / "data" / "world.json").read_text("utf-8"))
