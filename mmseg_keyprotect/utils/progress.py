"""Progress lines for long attacks and searches: what runs, how far it is, and about how long is left."""
import time
from typing import Callable


class Progress:
    """Reports ``what: done/total, detail, about N min left`` at most every ``every`` seconds.

    Args:
        what (str): what runs.
        total (int): steps in all.
        log (callable): where the line goes.
        every (float): seconds between lines.
    """

    def __init__(self, what: str, total: int, log: Callable[[str], None], every: float = 30.0):
        self.what, self.total, self.log, self.every = what, total, log, every
        self.started = self.last = time.perf_counter()

    def left(self, done: int, now: float) -> str:
        """The time left at ``done`` steps at time ``now``, from the pace so far."""
        elapsed = now - self.started
        seconds = elapsed / max(done, 1) * max(self.total - done, 0)
        return f'about {seconds / 60:.1f} min left' if seconds >= 60 else f'about {seconds:.0f} s left'

    def update(self, done: int, detail: str = '', force: bool = False) -> None:
        """Report ``done`` steps, when ``every`` seconds have passed since the last line (or ``force``)."""
        now = time.perf_counter()
        if not force and (now - self.last < self.every or done >= self.total):
            return
        self.last = now
        self.log(f'{self.what}: {done}/{self.total}' + (f', {detail}' if detail else '') + f', {self.left(done, now)}')
