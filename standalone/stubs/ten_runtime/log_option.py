from __future__ import annotations


class LogOption:
    def __init__(self, skip: int = 2, sync: bool = False):
        self.skip = skip
        self.sync = sync


DefaultLogOption = LogOption()
