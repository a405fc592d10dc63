"""The command line: one module per command group; each command parses its options, then calls one library function."""
