"""Thin Litestar controllers: bind HTTP to the serving layer."""
