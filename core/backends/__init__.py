"""Model backends. Each imports torch (or any heavy library) lazily, inside itself."""
