from adapters.testing import AdapterContract
from adapters.testing.example import ExampleAdapter


class TestExampleContract(AdapterContract):
    adapter_class = ExampleAdapter
    registered = False
