"""Pure translation between OpenAI requests/streams and Dify calls/events (no HTTP)."""
