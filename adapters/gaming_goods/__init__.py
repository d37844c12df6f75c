"""Gaming Goods, through its Partner API (``X-API-Key``; catalog, checkout, orders)."""

from adapters.gaming_goods.client import GamingGoodsAdapter
from adapters.gaming_goods.settings import GamingGoodsSettings

__all__ = ["GamingGoodsAdapter", "GamingGoodsSettings"]
