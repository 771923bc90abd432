"""The master patient index: who is who across facilities (resident IDs, names, addresses)."""
