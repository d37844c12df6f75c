"""Test support shipped with the adapter package, so a third-party adapter can use it.

``AdapterContract`` is the standard contract suite: one subclass per adapter runs it
against the adapter's own sandbox (``adapters.testing.contract``); its building blocks are
in ``adapters.testing.harness``. It needs pytest and pytest-asyncio, which is why nothing
outside tests imports this package.
"""

from adapters.testing.contract import AdapterContract
from adapters.testing.harness import ContractHarness, RequestLog, SandboxClient

__all__ = ["AdapterContract", "ContractHarness", "RequestLog", "SandboxClient"]
