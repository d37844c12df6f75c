"""The pieces adapters and the gateway share, built in one place each: the supplier
rate-limit key, variant ids, and the start of ``classify_response``."""

from __future__ import annotations

import httpx
import pytest

import adapters.base
import adapters.keys
import gateway.redis_keys
from adapters.errors import RateLimitedError, RejectedError
from adapters.gaming_goods.mapping import checkout_lines
from adapters.http_errors import ErrorAnswer, error_code_and_message, read_error
from adapters.ids import VariantRef, parse_variant_id, product_id, product_id_of, variant_id
from adapters.models import OrderLine
from gateway.catalog.offers import product_id_of as gateway_product_id_of
from gateway.redis_keys import RedisKeys


def test_gateway_and_adapters_build_the_upstream_rate_key_with_one_function() -> None:
    # The same function object: the two sides cannot drift apart.
    assert gateway.redis_keys.upstream_rate_key is adapters.keys.upstream_rate_key
    assert adapters.base.upstream_rate_key is adapters.keys.upstream_rate_key
    assert RedisKeys("gw").upstream_rate("vouchers", "orders") == "gw:rl:upstream:{vouchers}:orders"
    assert RedisKeys("p").upstream_rate("a", "b") == adapters.keys.upstream_rate_key("p", "a", "b")


def test_variant_ids_split_at_the_first_and_last_colon() -> None:
    assert variant_id("vouchers", "a:b", "fv500") == "vouchers:a:b:fv500"
    assert product_id("vouchers", 12) == "vouchers:12"
    ref = parse_variant_id("vouchers:a:b:fv500")
    assert ref == VariantRef("vouchers", "a:b", "fv500")
    assert ref is not None and ref.product_id == "vouchers:a:b"
    assert product_id_of("gg:7:std") == "gg:7"
    for bad in ("", "gg", "gg:7", ":7:std", "gg::std", "gg:7:", "7:std"):
        assert parse_variant_id(bad) is None, bad
        assert product_id_of(bad) is None, bad
    # The order layer finds variants (``gateway.catalog.offers.find_variant``) through
    # the same function.
    assert gateway_product_id_of is product_id_of


def test_gaming_goods_checkout_reads_variant_ids_the_same_way() -> None:
    line = OrderLine(variant_id="gaming_goods:ab:cd:std", quantity=2)
    assert checkout_lines([line]) == [{"product_id": "ab:cd", "quantity": 2}]
    from adapters.errors import NotFoundError

    for bad in ("gaming_goods::std", "gaming_goods:1:fv5", "vouchers:1:std"):
        with pytest.raises(NotFoundError):
            checkout_lines([OrderLine(variant_id=bad, quantity=1)])


def test_read_error_skips_successes_and_carries_status_code_and_supplier() -> None:
    assert read_error(httpx.Response(204), "acme") is None
    assert read_error(httpx.Response(399), "acme") is None
    answer = read_error(
        httpx.Response(409, json={"error": {"code": "OUT", "message": "sold out"}}), "acme"
    )
    assert answer == ErrorAnswer(supplier="acme", status=409, code="OUT", message="sold out")
    error = answer.error(RejectedError, "refused")
    assert type(error) is RejectedError and error.message == "refused"
    assert (error.supplier, error.upstream_status, error.upstream_code) == ("acme", 409, "OUT")
    limited = answer.error(RateLimitedError, "slow", retry_after=3.0)
    assert limited.retry_after == 3.0 and limited.upstream_code == "OUT"


def test_read_error_takes_the_adapters_own_parser() -> None:
    response = httpx.Response(500, text="<html>oops</html>")
    assert error_code_and_message(response) == (None, None)
    answer = read_error(response, "acme", parse=lambda r: ("E" + str(r.status_code), None))
    assert answer is not None and (answer.code, answer.message) == ("E500", None)
    for body in ([1], {"error": "flat"}, {"error": {"code": 7}}):
        parsed = error_code_and_message(httpx.Response(400, json=body))
        assert parsed == (("7", None) if body == {"error": {"code": 7}} else (None, None))
