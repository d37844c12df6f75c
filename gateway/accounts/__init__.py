"""Reseller accounts: balances per currency, holds taken with orders, an append-only ledger."""
