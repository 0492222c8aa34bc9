"""Record and replay: models and tools answered from a trace, ``replay_trace`` and divergence reports."""
