"""senti_edge.distill (in progress)."""
