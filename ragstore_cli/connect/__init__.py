"""Connections built from settings, and nothing else: pools, drivers, clients, SSL contexts."""
