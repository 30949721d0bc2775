"""Pure decisions of the work side: no I/O, no awaits, tested on GitHub's real payloads."""
