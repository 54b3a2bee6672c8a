"""The command-line layer: parse options, call the library, render (Rich for people, --json for scripts)."""
