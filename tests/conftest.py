"""Shared fixtures: a scripted OpenAI-compatible chat-completions server (`server`)."""

import pytest
from llm_stub import StubServer


@pytest.fixture
def server():
    s = StubServer()
    yield s
    s.close()


@pytest.fixture
def stop_after_checkpoints(monkeypatch):
    """`stop(n)`: from now on, `training.run` raises KeyboardInterrupt right after writing
    its n-th checkpoint (an interrupted fit); returns the list of checkpoint folders written."""
    from fairjax import training

    def stop(n: int) -> list[str]:
        save, saved = training._Checkpoints.save, []

        def save_then_stop(self, loop, fingerprint):
            save(self, loop, fingerprint)
            saved.append(self.path.parent.name)
            if len(saved) == n:
                monkeypatch.setattr(training._Checkpoints, "save", save)
                raise KeyboardInterrupt

        monkeypatch.setattr(training._Checkpoints, "save", save_then_stop)
        return saved

    return stop
