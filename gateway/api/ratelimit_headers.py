"""The rate-limit headers of every authenticated answer, from the limiter's ``Quota``.

The limiter (``gateway.access.ratelimit``) decides and reports numbers; how they are
written on the wire is the API's business:

* ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` as the
  suppliers send them (``Reset`` is the Unix time at which the bucket is full again);
* ``RateLimit-Policy: "key";q=<limit>;w=60`` and ``RateLimit: "key";r=<remaining>;t=<s>``
  following draft-ietf-httpapi-ratelimit-headers-10 (September 2025): one policy named
  ``key``, quota ``q`` per window ``w`` seconds; ``r`` remaining units, ``t`` seconds
  until the quota is fully restored;
* on 429, ``Retry-After``: seconds until one more request will be admitted (from the
  error's ``retry_after``, by ``gateway.api.errors.from_domain``).

When the limiter could not answer and the request was admitted anyway (fail open), only
what is known without Redis is sent: the limit and the policy.
"""

from __future__ import annotations

from gateway.access.ratelimit import Quota, Window

Headers = list[tuple[bytes, bytes]]

POLICY_NAME = "key"
_POLICY = POLICY_NAME.encode()

#: The two headers that depend on the limit alone, per limit seen (a handful of distinct
#: limits in practice; bounded all the same).
_policies: dict[int, Headers] = {}


def policy_headers(limit: int) -> Headers:
    """What is known without Redis: the limit itself."""
    headers = _policies.get(limit)
    if headers is None:
        if len(_policies) >= 1000:
            _policies.clear()
        headers = _policies[limit] = [
            (b"x-ratelimit-limit", b"%d" % limit),
            (b"ratelimit-policy", b'"%s";q=%d;w=60' % (_POLICY, limit)),
        ]
    return headers


#: What is the same for every request of one decision, per ``Window`` (hashed by
#: identity: one per decision): the headers of the limit, policy and reset, and the end
#: of the ``RateLimit`` value (``;t=<s>``). Worked out once per decision rather than per
#: request (the remaining count is then formatted once, for both headers that show it);
#: all dropped at once past the bound.
_constants: dict[Window, tuple[Headers, bytes]] = {}
_MAX_WINDOWS = 1024
_REMAINING = b'"%s";r=' % _POLICY


def quota_headers(quota: Quota) -> Headers:
    """The rate-limit headers of one answer (lower-case names, as ASGI sends them)."""
    window, remaining = quota
    if remaining is None:
        return policy_headers(window.limit)
    constants = _constants.get(window)
    if constants is None:
        if len(_constants) >= _MAX_WINDOWS:
            _constants.clear()
        headers = [*policy_headers(window.limit), (b"x-ratelimit-reset", b"%d" % window.reset_at)]
        constants = _constants[window] = (headers, b";t=%d" % window.reset_in)
    headers, reset_in = constants
    left = b"%d" % remaining
    return [
        *headers,
        (b"x-ratelimit-remaining", left),
        (b"ratelimit", _REMAINING + left + reset_in),
    ]
