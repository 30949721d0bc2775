"""The agent: its prompt, its container, and its event stream."""
