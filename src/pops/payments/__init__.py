"""Payments: the gateway interface and its adapters, merchant accounts, and (later) payment
attempts, receipts, voids, refunds and reconciliation."""
