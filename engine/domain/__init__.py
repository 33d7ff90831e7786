"""The trading domain: pure values and state machines (no I/O, no clocks, no event loop)."""
