"""Test support shipped with the adapter package, so a third-party adapter can use it.

``AdapterContract`` is the standard contract suite: one subclass per adapter runs it
against the adapter's own sandbox (see ``adapters.testing.contract``). It needs pytest and
pytest-asyncio, which is why nothing outside tests imports this package.
"""

from adapters.testing.contract import AdapterContract, ContractHarness, SandboxClient

__all__ = ["AdapterContract", "ContractHarness", "SandboxClient"]
