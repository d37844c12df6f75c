"""The contract suite against the reference adapter: proves the suite itself passes a
correct adapter (half-second rate windows keep this self-check quick)."""

from adapters.testing import AdapterContract
from adapters.testing.example import ExampleAdapter


class TestExampleContract(AdapterContract):
    adapter_class = ExampleAdapter
    registered = False
    rate_limit = (10, 0.5)
