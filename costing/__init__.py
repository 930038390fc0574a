"""What it costs: the price catalog, cost attribution, cost per token, idle waste."""
