"""The unified catalog: snapshots, sync, the in-memory search index and its service.

Modules import what they need from their siblings directly (``gateway.catalog.index``
for the index); this package re-exports nothing, so importing one part never drags in
the others.
"""
