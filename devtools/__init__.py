"""Developer tools for running and testing the service locally (not deployed)."""
