"""A budget is Composer's scale_schedule_ratio: it scales the duration and the milestones, never the warmup."""

import pytest
from composer.core import Callback, State
from composer.loggers import Logger
from conftest import TINY

from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer, scaled_duration

SHORT = ['scheduler.milestones=[3ep]']
SCHEDULE = [
    'max_duration=16ba', 'eval_interval=16ba', 'scheduler.name=multistep_with_warmup', 'scheduler.t_warmup=2ba',
    'scheduler.milestones=[8ba]', 'scheduler.gamma=0.1', 'optimizer.lr=0.05',
]


class LearningRates(Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def batch_start(self, state: State, logger: Logger) -> None:
        self.lrs.append(state.optimizers[0].param_groups[0]['lr'])


def test_half_budget_halves_the_batches_and_milestones_and_keeps_the_warmup():
    trainer = build_trainer(load_config(None, [*TINY, *SCHEDULE, 'scale_schedule_ratio=0.5']))
    record = LearningRates()
    trainer.state.callbacks.append(record)
    trainer.fit()
    trainer.close()
    assert int(trainer.state.timestamp.batch) == 8  # 16ba x 0.5
    # Composer steps the schedule after each batch, so batch t trains with the rate of t - 1. The warmup still
    # takes 2 batches (0, half, full; scaled it would take 1) and the drop moves from batch 8 to batch 4.
    assert record.lrs == pytest.approx([0.0, 0.0, 0.025, 0.05, 0.05, 0.005, 0.005, 0.005])


def test_scaled_duration_is_what_the_trainer_trains():
    assert scaled_duration(load_config(None, [*SHORT, 'max_duration=4ep', 'scale_schedule_ratio=0.5'])) == '2ep'
    assert scaled_duration(load_config(None, [*SHORT, 'max_duration=4ep', 'scale_schedule_ratio=2'])) == '8ep'
    assert scaled_duration(load_config(None, [*SHORT, 'max_duration=4ep'])) == '4ep'


def test_a_ratio_that_leaves_nothing_to_train_is_a_one_line_error():
    with pytest.raises(UsageError) as e:
        load_config(None, [*SHORT, 'data.name=digits', 'max_duration=4ep', 'scale_schedule_ratio=0.2'])
    assert str(e.value) == (
        "scale_schedule_ratio=0.2 scales max_duration=4ep to 0: use a ratio (a sweep's budget) of at least 1/4, or "
        'give max_duration in a finer unit (ba)'
    )
