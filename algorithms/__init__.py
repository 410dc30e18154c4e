"""Composer algorithms that reuse the checkpoints and by-products of past training runs."""
