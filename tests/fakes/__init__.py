"""Local fake Reddit and X servers that speak the real APIs' JSON, so the scrapers are tested without a network."""
