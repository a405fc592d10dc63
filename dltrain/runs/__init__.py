"""Run folders and what works over several of them: compare, sweep, reproduce."""
