"""The drivers: loops that call the math layer and sync with the host once per iteration."""
