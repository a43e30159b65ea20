"""Stand-in for TEN's ``ten_ai_base`` (0.7.41), written from the contract §2.

Only what a TTS extension uses: ``tts2``, ``message``, ``struct``, ``helper``,
``const`` and ``utils``. Needs only the stdlib, pydantic and ``ten_runtime``.
"""
