"""Operations: structured logs, metrics, the ``/metrics`` endpoint, request middleware.

``logging``    JSON lines with request context and secret redaction;
``metrics``    HTTP metrics, route-template labels, multiprocess exposition;
``middleware`` the outermost ASGI middleware that counts, times and logs each request;
``shutdown``   the uvicorn options that make a stop graceful.
"""
