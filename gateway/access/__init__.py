"""Reseller access: who may call ``/v1``, with which key, from where, and how fast.

* ``models``: ``Reseller`` and ``ApiKey`` (what handlers find in ``request.state``);
* ``tokens``: the key format, hashing and constant-time comparison;
* ``store``: the records in Redis, managed by ``gateway resellers`` / ``gateway keys``;
* ``authenticate``: key → ``Credential``, cached in-process (revocation lag bound);
* ``client_ip``: the client address behind trusted proxies, for IP allowlists;
* ``ratelimit``: per-key limits shared by all instances, and their headers;
* ``service``: ``Access``, which runs the checks in order, and the start-up hook;
* ``guard``: wraps each route whose operation declares a scope.
"""
