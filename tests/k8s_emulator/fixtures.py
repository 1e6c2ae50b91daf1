"""pytest plugin: ``pytest_plugins = ["tests.k8s_emulator.fixtures"]``.

Each test gets a fresh emulator (its own port, token, store and controllers); starting one
costs a few milliseconds because the CRDs are parsed once per process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .emulator import KubernetesEmulator


@pytest.fixture
def k8s_emulator() -> Iterator[KubernetesEmulator]:
    """A running emulator with the ``default`` namespace; fails the test if the emulator
    itself hit an internal error (a bug in the emulator, not in the code under test)."""
    with KubernetesEmulator(namespaces=["default"]) as emu:
        yield emu
    assert not emu.internal_errors, "k8s emulator internal errors:\n" + "\n".join(
        emu.internal_errors
    )


@pytest.fixture
def k8s_api_client(k8s_emulator: KubernetesEmulator) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` bound to the emulator."""
    client = k8s_emulator.api_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def k8s_kubeconfig(k8s_emulator: KubernetesEmulator, tmp_path: Path) -> Path:
    """Path of a kubeconfig file (context ``emulator``) pointing at the emulator."""
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig")
