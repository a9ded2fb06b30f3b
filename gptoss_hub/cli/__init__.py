"""The `gptoss-hub` command-line interface."""
