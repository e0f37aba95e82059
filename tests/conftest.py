"""Shared fixtures: a scripted OpenAI-compatible chat-completions server (`server`), and the
release of compiled programs after every test module."""

import jax
import pytest
from llm_stub import StubServer


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every XLA:CPU executable keeps its code in memory mappings (about 1,200 for one FADM
    training program), and fairjax's per-configuration caches keep the programs of up to
    32 configurations each alive. Over the whole suite in one process that passed Linux's
    default `vm.max_map_count` (65,530), and XLA crashed inside a compile (a segfault,
    once an abort). `jax.clear_caches()` frees the executables; a module that needs a
    program again recompiles it.
    """
    yield
    jax.clear_caches()


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
