"""Built-in backend plugins. Each registers through the `gptoss_hub` entry-point group, exactly as a
third-party plugin does, so the built-ins have no privileged path into the hub."""
