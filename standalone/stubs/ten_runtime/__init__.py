"""Stand-in for TEN's ``ten_runtime`` Python package (ten_runtime_python 0.11.71).

Used only when the real package is missing (see standalone/tenhost.py). Written
from /work/shared/reference/ten-tts-contract.md §1. Where the real runtime ends
the process (an uncaught exception in a callback, a missing ``${env:VAR}``, an
invalid property), the stand-in logs the same line and makes ``run()`` raise
``StandinFatalError``; with ``TEN_STANDIN_FATAL=exit`` it ends the process like
the real one. An ``App`` run from a thread other than its creator's aborts the
process in any case. ``TEN_PYTHON_THREAD_MODE`` (``single_thread`` by default,
or ``multi_thread``) is honoured. README.md lists each verified runtime behaviour
and the test that holds it.
"""

from ._runtime import StandinFatalError as StandinFatalError  # not in __all__
from .addon import Addon
from .addon_manager import register_addon_as_extension
from .app import App
from .async_extension import AsyncExtension
from .async_ten_env import AsyncTenEnv
from .async_test import AsyncExtensionTester, AsyncTenEnvTester
from .audio_frame import AudioFrame, AudioFrameDataFmt
from .cmd import Cmd, StartGraphCmd, StopGraphCmd, TriggerLifeCycleCmd
from .cmd_result import CmdResult, StatusCode
from .data import Data
from .error import TenError, TenErrorCode
from .extension import Extension
from .loc import Loc
from .log_level import LogLevel
from .log_option import DefaultLogOption, LogOption
from .send_options import SendOptions
from .ten_env import TenEnv
from .test import ExtensionTester, TenEnvTester
from .value import Value, ValueType
from .video_frame import PixelFmt, VideoFrame

__all__ = [
    "Addon",
    "register_addon_as_extension",
    "App",
    "Extension",
    "AsyncExtension",
    "TenEnv",
    "AsyncTenEnv",
    "SendOptions",
    "Cmd",
    "CmdResult",
    "StatusCode",
    "StartGraphCmd",
    "StopGraphCmd",
    "TriggerLifeCycleCmd",
    "Data",
    "AudioFrame",
    "AudioFrameDataFmt",
    "VideoFrame",
    "PixelFmt",
    "LogLevel",
    "LogOption",
    "DefaultLogOption",
    "TenError",
    "TenErrorCode",
    "Value",
    "ValueType",
    "Loc",
    "ExtensionTester",
    "TenEnvTester",
    "AsyncExtensionTester",
    "AsyncTenEnvTester",
]
