"""The daemon's machinery: claiming, running and completing tasks, and its side loops."""
