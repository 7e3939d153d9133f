"""The Textual time-travel UI (installed as replay.tui). Built in its own issue."""
