"""Venues behind one port: the simulated (paper) exchange, Kraken, and replay sources of market data."""
