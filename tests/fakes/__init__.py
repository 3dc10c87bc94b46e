"""Fakes of the outside services the gateway talks to, for tests and benchmarks."""
