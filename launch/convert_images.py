"""Convert a folder of images to MDS: ``python launch/convert_images.py --in_root DIR --out_root DIR_OR_S3``.

``DIR`` holds one sub-folder of JPEG/PNG images per class (ImageNet, Caltech-101 layout), or ``train/`` and
``val/`` each holding them. Without ``train/`` and ``val/`` a seeded, class-stratified ``--val_fraction`` of each
class becomes the test split. Writes ``{out_root}/train`` and ``{out_root}/test`` with columns x (JPEG), y, i, and
``{out_root}/classes.json`` (the class names; class id c is the c-th name). JPEG files are stored as they are;
PNGs and other images are re-encoded as JPEG at quality 95. Train on it with ``data.name=images
data.remote={out_root} data.resolution=R``.
"""

from __future__ import annotations

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.rules import SEED, Location, Number


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument('--in_root', required=True, type=arg_type(Location()),
                        help='folder of class sub-folders (or train/ and val/ of them)')
    parser.add_argument('--out_root', required=True, type=arg_type(Location()), help='output folder or s3://bucket/prefix')
    parser.add_argument('--val_fraction', type=arg_type(Number(0, 1, low_open=True, high_open=True)), default=0.1,
                        help='share of each class held out for test when there is no train/ and val/ (default 0.1)')
    parser.add_argument('--seed', type=arg_type(SEED), default=0, help='seed of that held-out share (default 0)')
    args = parser.parse_args(argv)

    from recipes.core import storage
    from recipes.core.data.folder import convert_image_folder

    storage.check_reachable(args.out_root)
    meta = convert_image_folder(args.in_root, args.out_root, val_fraction=args.val_fraction, seed=args.seed)
    print(
        f'wrote {storage.join(args.out_root, "train")} ({meta["splits"]["train"]} images), '
        f'{storage.join(args.out_root, "test")} ({meta["splits"]["test"]}) and {meta["num_classes"]} classes in '
        f'{storage.join(args.out_root, "classes.json")}',
    )
    return 0


if __name__ == '__main__':
    run_cli(main)
