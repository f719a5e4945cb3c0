"""Dify Service API: wire types and the async client (transport only, no OpenAI)."""
