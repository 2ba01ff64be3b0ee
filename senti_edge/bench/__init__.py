"""senti_edge.bench (in progress)."""
