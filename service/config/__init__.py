"""The configuration: the TOML file read and checked once, every problem named by its key path."""
