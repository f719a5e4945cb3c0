"""OpenAI Chat Completions wire types (protocol only, no logic)."""
