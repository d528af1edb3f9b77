"""Training runs that every visitor can watch at once: one run trains at a time, the others queue, and a visitor who
asks for a run with the same settings as one already live or queued joins it instead of queueing a copy.

A class pressing Train together with the same settings shares one run and sees its curves at once; a visitor with
other settings sees the queue ahead and the run in progress meanwhile. The queue stays short: the runs waiting share
what is left of ``queue_s`` evenly, so that the last of a crowd ends within it (``TrainingHall.rebalance``).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dp_core.labelled import TextSplits


@dataclass(frozen=True)
class UploadedData:
    """A visitor's own labelled data, read once before its run joins the hall: visitors whose files hold the same
    bytes, read with the same columns, ask for the same run."""

    digest: str  # of the file's bytes and the columns read
    path: str = field(compare=False)
    text_columns: tuple[str, ...] = field(compare=False)
    label_column: str = field(compare=False)
    splits: TextSplits = field(compare=False, repr=False)


@dataclass(frozen=True)
class RunRequest:
    """The settings that decide a run: two requests alike share one run."""

    task: str
    backbone: str
    methods: tuple[str, ...]
    budget_s: float  # per method
    k_shot: int | None
    seed: int
    head: str
    data: UploadedData | None = None  # a visitor's own data (Your data), else the SuperGLUE task


@dataclass
class RunRecord:
    """A run's curves and outcome as it goes, for every visitor who watches it."""

    request: RunRequest  # as asked for (the key visitors join on)
    budget_s: float  # per method, as it runs: smaller than asked when the queue was long
    losses: list[dict] = field(default_factory=list)
    devs: list[dict] = field(default_factory=list)
    spread: list[dict] = field(default_factory=list)  # where DP puts the prompt at each evaluation
    best: list[dict] = field(default_factory=list)  # one row per finished method
    status: str = ""
    note: str = ""  # said once to every watcher (few-shot k above the train set)
    models: dict = field(default_factory=dict)  # method title -> trained model, when each method ends
    outcome: object = None  # what a run leaves beside its models (Your data: its dev scores, read)
    elapsed: dict[str, float] = field(default_factory=dict)  # method title -> seconds trained so far
    started: bool = False
    finished: bool = False
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    watchers: set[int] = field(default_factory=set)  # the sessions watching it
    updates: int = 0  # bumped at every change, so a watcher redraws only when there is something new

    def changed(self) -> None:
        self.updates += 1


Execute = Callable[[RunRecord], Iterator[None]]  # trains a record's methods, yielding after each change
MIN_BUDGET_S = 5.0  # seconds a method trains at least, however long the queue


class TrainingHall:
    """One run at a time on this machine, in a worker thread; visitors join, queue and leave."""

    def __init__(self, execute: Execute, queue_s: float, run_overhead_s: float = 0.0):
        self.execute = execute
        self.queue_s = queue_s  # the time the queue may hold: the last run queued ends within it
        self.run_overhead_s = run_overhead_s  # what a run costs besides its training (data, features, scoring)
        self.lock = threading.Lock()
        self.queue: list[RunRecord] = []  # the run in progress first, then the waiting ones
        self.worker: threading.Thread | None = None

    def join(self, request: RunRequest, watcher: int) -> RunRecord:
        """The live or queued run with these settings, or a new one at the end of the queue."""
        with self.lock:
            record = next((run for run in self.queue if run.request == request and not run.cancel.is_set()), None)
            if record is None:
                record = RunRecord(request, request.budget_s)
                self.queue.append(record)
                self.rebalance()
            record.watchers.add(watcher)
            if self.worker is None or not self.worker.is_alive():
                self.worker = threading.Thread(target=self.work, name="training-hall", daemon=True)
                self.worker.start()
            return record

    def leave(self, record: RunRecord, watcher: int) -> int:
        """``watcher`` stops watching; a run nobody watches is stopped after its current step (or dropped from the
        queue). Returns how many still watch it."""
        with self.lock:
            record.watchers.discard(watcher)
            if not record.watchers:
                record.cancel.set()
                if not record.started and record in self.queue:
                    self.queue.remove(record)
                    record.finished = True
                    record.changed()
            return len(record.watchers)

    def ahead(self, record: RunRecord) -> list[RunRecord]:
        """The runs that train before this one: the one in progress first."""
        with self.lock:
            return self.queue[:self.queue.index(record)] if record in self.queue else []

    def seconds_left(self, runs: list[RunRecord]) -> float:
        """About how long those runs still take (their budgets and overheads; the one in progress counts what it has
        left)."""
        total = 0.0
        for run in runs:
            trained = sum(dict(run.elapsed).values())
            total += max(0.0, run.budget_s * len(run.request.methods) + self.run_overhead_s - trained)
        return total

    def rebalance(self) -> None:
        """The waiting runs' budgets: each as asked where the queue has room, else an even share of what the runs
        in progress leave of ``queue_s`` (a run asking less keeps its ask; 5 s a method at least). Called with the
        lock held, when a run joins; a waiting visitor's page shows its budget as it changes."""
        live = [run for run in self.queue if not run.cancel.is_set()]
        waiting = [run for run in live if not run.started]
        room = self.queue_s - self.seconds_left([run for run in live if run.started]) - \
            self.run_overhead_s * len(waiting)
        asked = sorted(waiting, key=lambda run: run.request.budget_s)
        slots = sum(len(run.request.methods) for run in asked)
        for run in asked:  # water-filling: the smaller asks first, the rest share what they leave
            methods = len(run.request.methods)
            budget = max(MIN_BUDGET_S, min(run.request.budget_s, room / max(1, slots)))
            room, slots = room - budget * methods, slots - methods
            if budget != run.budget_s:
                run.budget_s = budget
                run.changed()

    def work(self) -> None:
        """The worker: trains the queue's runs one after another until it is empty."""
        while True:
            with self.lock:
                if not self.queue:
                    return
                record = self.queue[0]
                record.started = True
            try:
                for _ in self.execute(record):
                    pass
            except Exception as error:  # noqa: BLE001 (a run's failure is said to its watchers, not raised here)
                traceback.print_exc()
                record.error = str(error).split("\n")[0] or type(error).__name__
            with self.lock:
                record.finished = True
                record.changed()
                if record in self.queue:
                    self.queue.remove(record)
