"""Sample prediction events: a bundled set for the demo, and a generator for tests and benchmarks."""
