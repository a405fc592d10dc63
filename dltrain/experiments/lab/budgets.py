"""The lab's budgets: the epochs of a run and the training windows it sees. Nothing heavy is imported
here, so that `dltrain lab --help` can quote it.

What a budget costs, with E its epochs (every compared cell trains once per seed, 3 seeds; the
optimizers' rate grid trains once, with its own seed):

    init            5 cells x 3 seeds                          = 15 runs of E epochs
    loss            2 cells x 3 seeds                          =  6 runs of E epochs
    optimizers      6 optimizers x 3 rates x 1 selection seed  = 18 runs of E epochs
                    + 6 optimizers at their chosen rate x 3    = 18 runs of E epochs
    schedules       5 cells x 3 seeds                          = 15 runs of 2 E epochs (time to plateau)
    regularization  5 cells x 3 seeds                          = 15 runs of 3 E epochs of 12 steps on 256 windows
    batch-size      3 cells x 3 seeds                          =  9 runs of E epochs

    96 runs, 141 E epochs at most (the optimizers' grids widen by up to 2 decades each way where
    their best rate sits at an end: up to 24 more selection runs): quick (E = 6) 846 epochs of at most
    1,536 training windows (24 steps of 64: a multiple of the batch, so the last batch is not traced
    again); full (E = 20) 2,820 epochs of every training window (HAPT: 5,836, 92 steps of 64; the
regularisation runs: 256 of them, in both budgets).

What that costs on HAPT, timed here on 2 CPU cores that another training shared: a 6-epoch run on
1,536 windows took about 7.5 s, some 4 s of it building, tracing and scoring whatever the epochs,
and a 6-epoch run on all 5,836 windows about 12 s. That puts quick near 15 minutes (mostly those 96
fixed costs; the batch-of-8 cells about a minute): measured, `dltrain lab --data data/hapt --out
models/lab` took 12.9 minutes (101 runs: 5 where a rate grid widened; docs/lab-example). Full comes to
about 90 minutes (estimated).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    epochs: int  # of a run, unless its cell says otherwise
    train_windows: int | None  # a seeded, class-stratified sample of this many training windows; None: all
    runs: int  # every run of the plan above, counted by tests/test_lab.py from the experiments themselves
    most_epochs: int

    def describe(self) -> str:
        windows = (
            f"a seeded, class-stratified sample of {self.train_windows:,} training windows (all of them if fewer)"
            if self.train_windows
            else "every training window"
        )
        return f"{self.epochs} epochs a run on {windows}; {self.runs} runs, at most {self.most_epochs:,} epochs"


BUDGETS = {
    "quick": Budget("quick", epochs=6, train_windows=1536, runs=96, most_epochs=846),
    "full": Budget("full", epochs=20, train_windows=None, runs=96, most_epochs=2820),
}
