"""The training hall: one run trains at a time, visitors with the same settings share it, the others queue."""

import threading
import time

import pytest

from app.hall import RunRequest, TrainingHall


def request(task="cb", budget_s=10.0, methods=("P-tuning v2 (fixed)",)):
    return RunRequest(task, "backbone", methods, budget_s, None, 0, "linear")


class Recorder:
    """An ``execute`` that trains nothing: it counts which runs it was given and takes ``steps`` steps of 0.05 s,
    each a second of the run's budget, until its gate opens."""

    def __init__(self, steps=3):
        self.steps, self.ran, self.gate = steps, [], threading.Event()

    def __call__(self, record):
        self.ran.append(record.request)
        self.gate.wait(5)
        for step in range(self.steps):
            if record.cancel.is_set():
                break
            record.elapsed[record.request.methods[0]] = step + 1.0
            record.changed()
            time.sleep(0.05)
            yield
        record.status = "Done."


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_visitors_with_the_same_settings_share_one_run_and_others_queue_behind_it():
    execute = Recorder()
    hall = TrainingHall(execute, queue_s=600)
    first, second = hall.join(request(), watcher=1), hall.join(request(), watcher=2)
    other = hall.join(request(task="rte"), watcher=3)
    assert first is second and first.watchers == {1, 2} and other is not first
    wait_for(lambda: first.started)
    assert hall.ahead(other) == [first] and hall.ahead(first) == []
    assert hall.seconds_left(hall.ahead(other)) == pytest.approx(10.0)  # its budget, nothing trained yet
    execute.gate.set()
    wait_for(lambda: other.finished)
    assert first.finished and execute.ran == [request(), request(task="rte")]  # each trained once, in order


def test_a_run_nobody_watches_stops_and_a_queued_one_is_dropped():
    execute = Recorder(steps=1000)
    hall = TrainingHall(execute, queue_s=600)
    running, queued = hall.join(request(), watcher=1), hall.join(request(task="rte"), watcher=2)
    assert hall.leave(queued, 2) == 0 and queued.finished and queued not in hall.queue
    wait_for(lambda: running.started)
    hall.join(request(), watcher=3)
    execute.gate.set()
    assert hall.leave(running, 1) == 1 and not running.cancel.is_set()  # another still watches
    assert hall.leave(running, 3) == 0 and running.cancel.is_set()
    wait_for(lambda: running.finished)
    assert execute.ran == [request()]
    assert hall.join(request(), watcher=4) is not running  # a cancelled run is not joined: a new one is queued


def test_the_runs_waiting_share_what_the_queue_has_left_so_the_last_ends_within_it():
    execute = Recorder()
    hall = TrainingHall(execute, queue_s=100)
    two_methods = ("a", "b")
    full = hall.join(request(budget_s=30, methods=two_methods), watcher=1)  # 60 s of training
    wait_for(lambda: full.started)
    assert full.budget_s == 30
    shrunk = hall.join(request(task="rte", budget_s=30, methods=two_methods), watcher=2)
    assert shrunk.budget_s == pytest.approx(20)  # the 40 s left of the queue's 100, over two methods
    updates = shrunk.updates
    other = hall.join(request(task="wic", budget_s=30, methods=two_methods), watcher=3)
    assert shrunk.budget_s == other.budget_s == pytest.approx(10)  # the 40 s shared by the two waiting
    assert shrunk.updates > updates  # its watcher's page redraws its budget
    small = hall.join(request(task="copa", budget_s=6, methods=("a",)), watcher=4)
    assert small.budget_s == 6 and shrunk.budget_s == pytest.approx(8.5)  # a small ask kept; the rest share
    crowd = [hall.join(request(task=f"t{n}", budget_s=30, methods=two_methods), watcher=10 + n) for n in range(20)]
    assert all(run.budget_s == 5 for run in crowd)  # never under 5 s a method
    execute.gate.set()
    wait_for(lambda: crowd[-1].finished, seconds=20)


def test_a_crowd_s_last_run_ends_within_the_queue_with_each_run_s_overhead_counted():
    execute = Recorder()
    hall = TrainingHall(execute, queue_s=600, run_overhead_s=3)
    first = hall.join(request(budget_s=30, methods=("a", "b")), watcher=0)
    wait_for(lambda: first.started)
    runs = [first] + [hall.join(request(task=f"t{n}", budget_s=30, methods=("a", "b")), watcher=n + 1)
                      for n in range(29)]
    assert hall.seconds_left(runs) == pytest.approx(600)  # thirty visitors: all of it within the 600 s
    assert all(5 <= run.budget_s < 30 for run in runs[1:])
    execute.gate.set()
    wait_for(lambda: runs[-1].finished, seconds=30)


def test_a_failing_run_tells_its_watchers_in_one_line():
    def execute(record):
        raise ValueError("the verbalizer needs a model with an LM head\nand more detail")
        yield

    hall = TrainingHall(execute, queue_s=600)
    record = hall.join(request(), watcher=1)
    wait_for(lambda: record.finished)
    assert record.error == "the verbalizer needs a model with an LM head"


def test_on_zero_gpu_each_visitor_trains_in_its_own_call_and_keeps_its_models(data_dir, tiny_backbone):
    from app import state
    from app.tabs.train import train_on_gpu

    shared = state.Shared(str(data_dir))
    shared.backbones[tiny_backbone.name] = tiny_backbone
    session = state.Session()
    updates = list(train_on_gpu(shared, "cb", tiny_backbone.name, [state.FIXED], 1, 8, 0, "linear head", session))
    final_state, status, losses, *_, summary = updates[-1]
    assert final_state is session and status.startswith("Done.") and len(updates) >= 2
    assert list(session.runs[("cb", tiny_backbone.name)]) == [state.FIXED]
    assert list(summary["method"]) == [state.FIXED] and len(losses) > 1


def test_a_waiting_visitor_reads_its_place_in_line_the_wait_and_whose_run_shows_meanwhile():
    from app import readings

    said = readings.waiting_reading(3, 42.4, "rte", ("P-tuning v2 (fixed)", "DP deep: position + length + pool"))
    assert "number 3 in line" in said and "about 42 s" in said and "rte, P-tuning v2 (fixed)" in said
    assert len(said.split()) <= 40
