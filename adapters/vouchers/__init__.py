"""The voucher products API supplier (entry point ``vouchers``)."""

from adapters.vouchers.client import VouchersAdapter

__all__ = ["VouchersAdapter"]
