"""API tests: /api/v1 through the test client, with a practice API key."""
