"""The command line: parses arguments, loads config, wires the packages. No logic of its own."""
