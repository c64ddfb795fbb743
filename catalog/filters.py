"""Mongo-style metadata filters compiled to parameterised SQL (placeholder)."""
