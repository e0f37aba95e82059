"""Shared fixtures: a scripted OpenAI-compatible chat-completions server (`server`)."""

import pytest
from llm_stub import StubServer


@pytest.fixture
def server():
    s = StubServer()
    yield s
    s.close()
