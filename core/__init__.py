"""What every app shares: request limits, range-checked filters, input rules."""
