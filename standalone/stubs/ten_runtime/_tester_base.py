"""Shared part of ExtensionTester and AsyncExtensionTester (contract §1.8)."""

from __future__ import annotations

from ._runtime import Graph

DEFAULT_TIMEOUT_US = 3 * 60 * 1_000_000  # TEN_EXTENSION_TESTER_DEFAULT_TIMEOUT_US


class _ExtensionTester:
    _ten_is_async = True

    def __init__(self) -> None:
        self._ten_addon: str | None = None
        self._ten_property_json: str | None = None
        self._ten_timeout_us = DEFAULT_TIMEOUT_US

    def _ten_state(self) -> None:
        # Tolerate subclasses that forgot super().__init__().
        if not hasattr(self, "_ten_timeout_us"):
            _ExtensionTester.__init__(self)

    def set_test_mode_single(
        self, addon_name: str, property_json_str: str | None = None
    ) -> None:
        self._ten_state()
        self._ten_addon = addon_name
        self._ten_property_json = property_json_str

    def set_test_mode_graph(self, graph_json: str) -> None:
        raise NotImplementedError(
            "The TEN stand-in supports only set_test_mode_single."
        )

    def set_timeout(self, timeout_us: int) -> None:
        self._ten_state()
        self._ten_timeout_us = int(timeout_us)

    def run(self):
        """Block until the test stops; return the first stop_test error, or None.

        Raises StandinFatalError where the real runtime would end the process.
        """
        self._ten_state()
        if self._ten_addon is None:
            raise RuntimeError("Call set_test_mode_single() before run().")
        graph = Graph(
            self,
            self._ten_addon,
            self._ten_property_json,
            self._ten_timeout_us,
            self._ten_is_async,
        )
        return graph.run()
