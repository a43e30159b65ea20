from __future__ import annotations

import itertools

from .msg import Msg

_ids = itertools.count(1)


class Cmd(Msg):
    @classmethod
    def create(cls, name: str) -> Cmd:
        return cls._new(name)

    def _init_fields(self) -> None:
        self._cmd_id = next(_ids)

    def clone(self) -> Cmd:
        other = self._copy()
        other._cmd_id = next(_ids)
        return other


class StartGraphCmd(Cmd):
    @classmethod
    def create(cls) -> StartGraphCmd:
        return cls._new("ten:start_graph")

    def set_graph_from_json(self, json_str: str) -> None:
        self._graph_json = json_str

    def set_predefined_graph_name(self, name: str) -> None:
        self._graph_name = name


class StopGraphCmd(Cmd):
    @classmethod
    def create(cls) -> StopGraphCmd:
        return cls._new("ten:stop_graph")

    def set_graph_id(self, graph_id: str) -> None:
        self._graph_id = graph_id


class TriggerLifeCycleCmd(Cmd):
    @classmethod
    def create(cls) -> TriggerLifeCycleCmd:
        return cls._new("ten:trigger_life_cycle")

    def set_stage(self, stage: str) -> None:
        self._stage = stage
