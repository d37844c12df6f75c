from adapters.testing import AdapterContract
from adapters.vouchers import VouchersAdapter


class TestVouchersContract(AdapterContract):
    adapter_class = VouchersAdapter
