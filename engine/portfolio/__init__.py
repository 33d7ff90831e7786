"""Portfolio accounting and performance metrics."""
