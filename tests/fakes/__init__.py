"""Stand-ins for what lies outside the project (an upstream LLM), served for real on loopback."""
