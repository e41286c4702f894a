"""The two timers of one SMTP session: how long its client may stay silent, and the DATA deadline.

The session (``crmmail.smtpd.server.IntakeSMTP``) drives them from aiosmtpd's public seams and
decides what an expiry means; this module only keeps time:

- the *wait* runs from the connection (or, behind a load balancer, until its PROXY header is
  read, with a wait of its own), restarts at every command aiosmtpd dispatches and, inside a
  message, at every byte received; it stops while the message is being stored (the client is
  silent because it waits for our reply) and starts again after;
- the *DATA deadline* bounds the whole DATA phase, from the command to the final dot, however
  steadily the bytes come.

Once stopped (the connection is gone), nothing starts them again.
"""

import asyncio
from collections.abc import Callable


class SessionDeadlines:
    """The silence timer and the DATA deadline of one session; each calls back on expiry."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        silence: float,
        data: float,
        on_silence: Callable[[], None],
        on_data: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.silence = silence
        self.data = data
        self.on_silence = on_silence
        self.on_data = on_data
        self._wait: asyncio.TimerHandle | None = None
        self._data: asyncio.TimerHandle | None = None
        self._stopped = False

    @property
    def in_data(self) -> bool:
        """Whether the DATA deadline runs (the client is sending a message)."""
        return self._data is not None

    def wait(self, seconds: float | None = None) -> None:
        """(Re)start the wait for the client: ``seconds``, or the silence it is allowed."""
        self._cancel_wait()
        if not self._stopped:
            self._wait = self.loop.call_later(
                self.silence if seconds is None else seconds, self._silence_expired
            )

    def start_data(self) -> None:
        """The DATA command: the whole phase must end within the DATA deadline."""
        self.end_data()
        if not self._stopped:
            self._data = self.loop.call_later(self.data, self._data_expired)

    def end_data(self) -> None:
        """The DATA phase is over (the message is in, refused, or cut)."""
        if self._data is not None:
            self._data.cancel()
            self._data = None

    def pause(self) -> None:
        """Neither timer runs: the client is waiting for us (until the next ``wait``)."""
        self.end_data()
        self._cancel_wait()

    def stop(self) -> None:
        """The connection is gone: cancel both, and start neither again."""
        self._stopped = True
        self.pause()

    def _cancel_wait(self) -> None:
        if self._wait is not None:
            self._wait.cancel()
            self._wait = None

    def _silence_expired(self) -> None:
        self._wait = None
        self.on_silence()

    def _data_expired(self) -> None:
        self._data = None
        self.on_data()
