from __future__ import annotations


class SendOptions:
    def __init__(self, wait_for_result: bool = False):
        self.wait_for_result = wait_for_result
