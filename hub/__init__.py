"""Roundtable: a federated conversation hub where customers own their conversations."""

__version__ = "0.1.0"
