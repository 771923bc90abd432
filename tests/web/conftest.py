"""Web fixtures: the hand-made district on both databases and a signed-in page client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import BACKENDS, empty_all_tables
from tests.web.district import PASSWORD, MiniDistrict, build
from yilian.app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module", params=BACKENDS)
def web_engine(request: pytest.FixtureRequest, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """One database per backend for a whole module: the pages only read the district (and
    add sessions and audit entries), so it is built once and emptied at the end."""
    engine = _engines[str(request.param)]
    empty_all_tables(engine)
    yield engine
    empty_all_tables(engine)


@pytest.fixture(scope="module")
def district(web_engine: Engine) -> MiniDistrict:
    return build(web_engine)


@pytest.fixture(scope="module")
def app(web_engine: Engine, district: MiniDistrict) -> FastAPI:
    return create_app(engine=web_engine, base_url="http://testserver", migrate=False)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, "the page has no CSRF token"
    return found.group(1)


class Browser:
    """A TestClient that signs in through the login form, as a person would."""

    def __init__(self, app: FastAPI) -> None:
        self.http = TestClient(app, raise_server_exceptions=False, follow_redirects=False)

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        token = csrf_of(self.http.get("/login"))
        form = {"username": username, "password": password, "csrf_token": token, "next": "/"}
        return self.http.post("/login", data=form)

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url)

    def post_form(self, url: str, data: dict[str, str], page: str = "/") -> httpx.Response:
        token = csrf_of(self.http.get(page))
        return self.http.post(url, data={**data, "csrf_token": token})


@pytest.fixture
def browser(app: FastAPI) -> Iterator[Browser]:
    client = Browser(app)
    with client.http:
        yield client


@pytest.fixture(scope="module")
def signed_in(app: FastAPI) -> Iterator[Callable[[str], Browser]]:
    """``signed_in(username)``: a browser signed in as that user, shared within the module
    (each sign-in verifies a scrypt hash, ~1 s); tests that sign out or switch the language
    make their own ``browser``."""
    browsers: dict[str, Browser] = {}

    def get(username: str) -> Browser:
        if username not in browsers:
            browser = Browser(app)
            assert browser.login(username).status_code == 303
            browsers[username] = browser
        return browsers[username]

    yield get
    for browser in browsers.values():
        browser.http.close()
