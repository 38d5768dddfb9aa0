"""Fixtures of the agent's unit tests."""

from __future__ import annotations

import pytest

from builder.agent import extract as extract_module
from builder.agent import writer as writer_module


@pytest.fixture(params=["batched", "python"])
def writer_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """An extraction test twice: its files handed to the C batch writer (three to a batch, so
    that several batches are in flight), and written by Python itself (builder installed
    without a C compiler)."""
    if request.param == "python":
        monkeypatch.setattr(extract_module, "NATIVE", None)
    elif writer_module.NATIVE is None:
        pytest.skip("the C batch writer is not compiled here (no C compiler when installed)")
    else:
        monkeypatch.setattr(writer_module, "BATCH_FILES", 3)
    return str(request.param)
