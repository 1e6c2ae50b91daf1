"""An emulated Kubernetes API server for tests, driven over real HTTP by the real client.

See ``KubernetesEmulator``; pytest users get the ``k8s_emulator`` fixture from
``tests.k8s_emulator.fixtures``.
"""

from .emulator import KubernetesEmulator
from .errors import ApiError
from .faults import Faults, RequestLog, RequestRecord
from .resources import ResourceType
from .store import Store

__all__ = [
    "ApiError",
    "Faults",
    "KubernetesEmulator",
    "RequestLog",
    "RequestRecord",
    "ResourceType",
    "Store",
]
