"""Test set-up: the whole test process runs under gevent, as the daemon does."""

from gevent import monkey

monkey.patch_all()

import pathlib  # noqa: E402

import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir():
    return FIXTURES
