"""Adapters for the HTTP clients Python apps use. Each answers fresh hits
from the shared cache and sends everything else to the sidecar as an HTTP
forward proxy. Import the one you need (they import their library)."""
