"""Workers of benchmarks/peers.py: one tool, one network, one process each."""
