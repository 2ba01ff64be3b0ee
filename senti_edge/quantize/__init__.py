"""senti_edge.quantize (in progress)."""
