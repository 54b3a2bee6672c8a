"""`python -m ragstore_cli` runs the same CLI as the `ragstore` console script."""

from ragstore_cli.cli.app import main

if __name__ == "__main__":
    main()
