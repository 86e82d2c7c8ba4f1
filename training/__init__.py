"""Networks, training and projection."""
