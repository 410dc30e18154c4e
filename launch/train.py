"""Train one run: ``[composer -n N] python launch/train.py RECIPE.yaml [key=value ...] [--debug]``."""

from __future__ import annotations

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.rules import LocalFile, Overrides


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument('recipe', type=arg_type(LocalFile('yamls/digits/baseline.yaml')),
                        help='YAML recipe, e.g. yamls/digits/baseline.yaml')
    parser.add_argument('overrides', nargs='*', type=arg_type(Overrides()),
                        help='key=value overrides, e.g. seed=3 data.global_batch_size=256')
    args = parser.parse_args(argv)

    from botocore.exceptions import EndpointConnectionError

    from recipes.config import load_config
    from recipes.core.errors import UsageError
    from recipes.trainer import build_trainer

    cfg = load_config(args.recipe, args.overrides)
    if cfg.threads is not None:  # the run's arithmetic: the same thread count wherever (and by whatever) it starts
        import torch

        torch.set_num_threads(cfg.threads)
    trainer = build_trainer(cfg)
    if int(trainer.state.timestamp.batch):
        print(f'resumed at batch {int(trainer.state.timestamp.batch)} (epoch {int(trainer.state.timestamp.epoch)})', flush=True)
    try:
        trainer.fit()
    except (EndpointConnectionError, ConnectionError) as e:
        # Composer's uploader gave up: everything uploaded before stays whole, and the same command resumes.
        raise UsageError(
            f'lost the connection to storage while saving to {cfg.save_folder} ({type(e).__name__}): checkpoints '
            'already uploaded are whole; run the same command again to resume from the newest',
        ) from e
    accuracy = trainer.state.eval_metrics.get('eval', {}).get('MulticlassAccuracy')
    if accuracy is not None:
        print(f'final test accuracy: {float(accuracy.compute()):.4f}', flush=True)
    trainer.close()
    return 0


if __name__ == '__main__':
    run_cli(main)
