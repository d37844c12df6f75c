from adapters.gaming_goods import GamingGoodsAdapter
from adapters.testing import AdapterContract


class TestGamingGoodsContract(AdapterContract):
    adapter_class = GamingGoodsAdapter
